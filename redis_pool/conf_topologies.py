"""Settings for Sentinel and Cluster aliases: the keys that pick a topology, checked.

Part of the settings layer (pure: no network, never raises on bad input); ``conf.py``
calls ``check()`` before it resolves the connection keys and ``finish()`` after. Kept apart
so the standalone parsing in ``conf.py`` reads as it did.

- Sentinel: ``sentinels`` (a list of (host, port)), ``service_name``, and optionally
  ``sentinel_kwargs`` (how to talk to the sentinels themselves: redis.Redis() keywords).
- Cluster: a ``redis+cluster://`` / ``rediss+cluster://`` URL, or ``'cluster': True`` with
  ``host``/``port`` and/or ``startup_nodes``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

STANDALONE, SENTINEL, CLUSTER = "standalone", "sentinel", "cluster"

SENTINEL_KEYS = frozenset({"sentinels", "service_name", "sentinel_kwargs"})
CLUSTER_KEYS = frozenset({"cluster", "startup_nodes"})
KEYS = SENTINEL_KEYS | CLUSTER_KEYS

# redis-py has no URL scheme for Cluster; ours maps onto the plain one.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

# Where a sentinel alias finds its master: the sentinels say, so these make no sense.
NOT_WITH_SENTINELS = ("url", "host", "port", "path", "cluster", "startup_nodes")

Err = Callable[..., None]  # conf.parse_alias's err(id, msg, hint=None)


@dataclass(frozen=True)
class TopologyFields:
    """The PoolConfig fields a topology adds (see ``conf.PoolConfig``)."""

    topology: str = STANDALONE
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    startup_nodes: tuple[tuple[str, int], ...] = ()


def plain_url(url: Any) -> Any:
    """``url`` with a ``+cluster`` scheme made plain, for redis-py's ``parse_url``."""
    if isinstance(url, str):
        for ours, plain in CLUSTER_SCHEMES.items():
            if url.startswith(ours):
                return plain + url[len(ours) :]
    return url


def is_cluster_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(tuple(CLUSTER_SCHEMES))


def kind_of(options: Mapping[str, Any]) -> str:
    if "sentinels" in options:
        return SENTINEL
    if options.get("cluster") or is_cluster_url(options.get("url")):
        return CLUSTER
    return STANDALONE


@cache
def sentinel_kwargs_keys() -> frozenset[str]:
    """What ``sentinel_kwargs`` may hold: redis.Redis() keywords (redis-py builds one
    client per sentinel with them), minus where-to-connect and pool plumbing."""
    names = set(inspect.signature(Redis.__init__).parameters) - {"self"}
    return frozenset(
        names
        - {
            "host", "port", "db", "unix_socket_path", "connection_pool",
            "single_connection_client", "event_dispatcher", "cache", "cache_config",
            "redis_connect_func", "maint_notifications_config",
            "oss_cluster_maint_notifications_handler",
        }
    )  # fmt: skip


def _nodes_problem(value: Any) -> bool:
    """True if ``value`` is not a non-empty list of (host, port) pairs."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        return True
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            return True
        host, port = item
        if not isinstance(host, str) or not host:
            return True
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            return True
    return False


def check(where: str, options: Mapping[str, Any], err: Err) -> str:
    """Check the topology keys of one alias (E030-E033); returns the topology it selects."""
    from redis_pool.conf import show

    kind = kind_of(options)
    for key in ("sentinels", "startup_nodes"):
        if key in options and _nodes_problem(options[key]):
            err(
                "redis_pool.E030",
                f"{where}[{key!r}] must be a non-empty list of (host, port) pairs, "
                f"got {show(key, options[key])}.",
                f"For example [('10.0.0.1', {26379 if key == 'sentinels' else 7000})].",
            )
    if kind == SENTINEL:
        name = options.get("service_name")
        if not isinstance(name, str) or not name.strip():
            err(
                "redis_pool.E031",
                f"{where} names sentinels but no 'service_name' (got {show('', name)}).",
                "Set 'service_name' to the name the sentinels monitor the master under "
                "(SENTINEL MASTERS lists it).",
            )
        for key in NOT_WITH_SENTINELS:
            if key in options:
                err(
                    "redis_pool.E033",
                    f"{where}[{key!r}] does not apply to a Sentinel alias: the sentinels "
                    "name the master.",
                    "Remove it; use 'password', 'username', 'db' and 'ssl' keys for the "
                    "master connection.",
                )
    else:
        for key in ("service_name", "sentinel_kwargs"):
            if key in options:
                err(
                    "redis_pool.E033",
                    f"{where}[{key!r}] only applies to a Sentinel alias, which has 'sentinels'.",
                    "Add 'sentinels': [(host, port), ...] or remove the key.",
                )
    if "startup_nodes" in options and kind != CLUSTER:
        err(
            "redis_pool.E033",
            f"{where}['startup_nodes'] only applies to a Cluster alias.",
            "Add 'cluster': True or use a redis+cluster:// url.",
        )
    if options.get("cluster") is False and is_cluster_url(options.get("url")):
        err(
            "redis_pool.E033",
            f"{where} sets 'cluster': False but its url is a redis+cluster:// url.",
        )
    if kind == SENTINEL and "sentinel_kwargs" in options:
        _check_sentinel_kwargs(where, options["sentinel_kwargs"], err)
    return kind


def _check_sentinel_kwargs(where: str, value: Any, err: Err) -> None:
    from redis_pool.conf import _type_problem, did_you_mean, show

    where = f"{where}['sentinel_kwargs']"
    if not isinstance(value, Mapping):
        err(
            "redis_pool.E032",
            f"{where} must be a dict of redis.Redis() keyword arguments, "
            f"got {type(value).__name__}.",
        )
        return
    allowed = sentinel_kwargs_keys()
    for key, item in value.items():
        if not isinstance(key, str) or key not in allowed:
            hint = did_you_mean(key, allowed) if isinstance(key, str) else None
            err(
                "redis_pool.E032",
                f"{where} has an unknown key {key!r}.",
                hint or "Keys are redis.Redis() keyword arguments, used for the sentinels.",
            )
            continue
        expected = _type_problem(key, item)
        if expected is not None:
            err("redis_pool.E032", f"{where}[{key!r}] must be {expected}, got {show(key, item)}.")


def finish(
    alias: str,
    where: str,
    kind: str,
    options: Mapping[str, Any],
    kwargs: dict[str, Any],
    transport: str,
    err: Err,
) -> tuple[TopologyFields, str]:
    """Move what a topology keeps apart out of ``kwargs``; (fields, display address).

    ``kwargs`` is the connection kwargs with defaults applied; it is changed in place:
    a Sentinel alias's connections get their host and port from the sentinels, a Cluster
    alias's from the cluster, so neither keeps ``host``/``port`` (nor Cluster ``db``).
    """
    from redis_pool.conf import MASK

    creds = f"{MASK}@" if kwargs.get("password") or kwargs.get("username") else ""
    if kind == SENTINEL:
        sentinels = tuple((h, p) for h, p in options["sentinels"])
        service = str(options["service_name"])
        fields = TopologyFields(
            topology=SENTINEL,
            sentinels=sentinels,
            service_name=service,
            sentinel_kwargs=_sentinel_kwargs(kwargs, options.get("sentinel_kwargs") or {}),
        )
        hosts = ",".join(f"{h}:{p}" for h, p in sentinels)
        scheme = "rediss+sentinel" if transport == "ssl" else "redis+sentinel"
        address = f"{scheme}://{creds}{hosts}/{service}/{kwargs.get('db', 0)}"
        return fields, address
    if kind != CLUSTER:
        return TopologyFields(), ""

    if transport == "unix":
        err("redis_pool.E033", f"{where} selects Redis Cluster, which has no unix sockets.")
    db = kwargs.pop("db", 0)
    if db:
        err(
            "redis_pool.E033",
            f"{where} selects Redis Cluster with db={db!r}: a cluster has database 0 only.",
            "Remove the database number (or use 0).",
        )
    nodes: list[tuple[str, int]] = []
    host, port = kwargs.pop("host", None), kwargs.pop("port", None)
    if host is not None or port is not None or "startup_nodes" not in options:
        nodes.append((host or "localhost", port or 6379))
    for h, p in options.get("startup_nodes") or ():
        if (h, p) not in nodes:
            nodes.append((h, p))
    scheme = "rediss+cluster" if transport == "ssl" else "redis+cluster"
    address = f"{scheme}://{creds}" + ",".join(f"{h}:{p}" for h, p in nodes)
    return TopologyFields(topology=CLUSTER, startup_nodes=tuple(nodes)), address


def _sentinel_kwargs(kwargs: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """How we talk to the sentinels: the alias's timeouts, a client name, no retries.

    No retries because redis-py asks the next sentinel when one fails: that is the retry,
    and a retry per sentinel would multiply the time a dead sentinel costs on every new
    connection. Credentials are not copied: sentinels have their own (``sentinel_kwargs``).
    """
    result: dict[str, Any] = {
        key: kwargs[key]
        for key in ("socket_connect_timeout", "socket_timeout", "socket_keepalive", "client_name")
        if key in kwargs
    }
    result["retry"] = Retry(NoBackoff(), 0)
    result.update(given)
    return result
