"""Settings for Sentinel and Cluster aliases: the keys that pick a topology, checked.

Pure stages of ``alias.parse_alias``: ``check()`` before the connection keys are resolved,
``place()`` after. Neither changes what it is given.

- Sentinel: ``sentinels`` (a list of (host, port)), ``service_name``, and optionally
  ``sentinel_kwargs`` (how to talk to the sentinels themselves: redis.Redis() keywords).
- Cluster: a ``redis+cluster://`` / ``rediss+cluster://`` URL, or ``'cluster': True`` with
  ``host``/``port`` and/or ``startup_nodes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_pool.config.keys import (
    CLUSTER,
    SENTINEL,
    STANDALONE,
    UNIX,
    Topology,
    Transport,
    did_you_mean,
    sentinel_kwargs_keys,
    type_problem,
)
from redis_pool.config.problems import Problem
from redis_pool.config.secrets import masked_address, show

# redis-py has no URL scheme for Cluster; ours maps onto the plain one.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

# Where a sentinel alias finds its master: the sentinels say, so these make no sense.
NOT_WITH_SENTINELS = ("url", "host", "port", "path", "cluster", "startup_nodes")

Node = tuple[str, int]


@dataclass(frozen=True)
class Discovery:
    """How an alias finds its servers: through sentinels, or a cluster's startup nodes.

    Empty for a standalone alias, whose one server is in ``PoolConfig.kwargs``.
    """

    sentinels: tuple[Node, ...] = ()
    service_name: str | None = None
    # repr=False: it may hold the sentinels' password.
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    startup_nodes: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Placement:
    """What ``place()`` gives: the topology, how it is found, and what is left to connect."""

    topology: Topology
    discovery: Discovery
    kwargs: dict[str, Any]  # the connection kwargs, without what the topology keeps apart
    address: str  # masked, for display
    problems: list[Problem]


def plain_url(url: Any) -> Any:
    """``url`` with a ``+cluster`` scheme made plain, for redis-py's ``parse_url``."""
    if isinstance(url, str):
        for ours, plain in CLUSTER_SCHEMES.items():
            if url.startswith(ours):
                return plain + url[len(ours) :]
    return url


def is_cluster_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(tuple(CLUSTER_SCHEMES))


def kind_of(options: Mapping[str, Any]) -> Topology:
    if "sentinels" in options:
        return SENTINEL
    if options.get("cluster") or is_cluster_url(options.get("url")):
        return CLUSTER
    return STANDALONE


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


def check(where: str, options: Mapping[str, Any]) -> list[Problem]:
    """The topology keys of one alias, checked (E030-E033)."""
    kind = kind_of(options)
    found = [
        Problem(
            "redis_pool.E030",
            f"{where}[{key!r}] must be a non-empty list of (host, port) pairs, "
            f"got {show(key, options[key])}.",
            f"For example [('10.0.0.1', {26379 if key == 'sentinels' else 7000})].",
        )
        for key in ("sentinels", "startup_nodes")
        if key in options and _nodes_problem(options[key])
    ]
    if kind == SENTINEL:
        found += _check_sentinel(where, options)
    else:
        found += [
            Problem(
                "redis_pool.E033",
                f"{where}[{key!r}] only applies to a Sentinel alias, which has 'sentinels'.",
                "Add 'sentinels': [(host, port), ...] or remove the key.",
            )
            for key in ("service_name", "sentinel_kwargs")
            if key in options
        ]
    if "startup_nodes" in options and kind != CLUSTER:
        found.append(
            Problem(
                "redis_pool.E033",
                f"{where}['startup_nodes'] only applies to a Cluster alias.",
                "Add 'cluster': True or use a redis+cluster:// url.",
            )
        )
    if options.get("cluster") is False and is_cluster_url(options.get("url")):
        found.append(
            Problem(
                "redis_pool.E033",
                f"{where} sets 'cluster': False but its url is a redis+cluster:// url.",
            )
        )
    if kind == SENTINEL and "sentinel_kwargs" in options:
        found += _check_sentinel_kwargs(where, options["sentinel_kwargs"])
    return found


def _check_sentinel(where: str, options: Mapping[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    name = options.get("service_name")
    if not isinstance(name, str) or not name.strip():
        found.append(
            Problem(
                "redis_pool.E031",
                f"{where} names sentinels but no 'service_name' (got {show('', name)}).",
                "Set 'service_name' to the name the sentinels monitor the master under "
                "(SENTINEL MASTERS lists it).",
            )
        )
    found += [
        Problem(
            "redis_pool.E033",
            f"{where}[{key!r}] does not apply to a Sentinel alias: the sentinels name the master.",
            "Remove it; use 'password', 'username', 'db' and 'ssl' keys for the master connection.",
        )
        for key in NOT_WITH_SENTINELS
        if key in options
    ]
    return found


def _check_sentinel_kwargs(where: str, value: Any) -> list[Problem]:
    where = f"{where}['sentinel_kwargs']"
    if not isinstance(value, Mapping):
        return [
            Problem(
                "redis_pool.E032",
                f"{where} must be a dict of redis.Redis() keyword arguments, "
                f"got {type(value).__name__}.",
            )
        ]
    found: list[Problem] = []
    allowed = sentinel_kwargs_keys()
    for key, item in value.items():
        if not isinstance(key, str) or key not in allowed:
            hint = did_you_mean(key, allowed) if isinstance(key, str) else None
            found.append(
                Problem(
                    "redis_pool.E032",
                    f"{where} has an unknown key {key!r}.",
                    hint or "Keys are redis.Redis() keyword arguments, used for the sentinels.",
                )
            )
            continue
        expected = type_problem(key, item)
        if expected is not None:
            msg = f"{where}[{key!r}] must be {expected}, got {show(key, item)}."
            found.append(Problem("redis_pool.E032", msg))
    return found


def place(
    where: str, options: Mapping[str, Any], kwargs: Mapping[str, Any], transport: Transport
) -> Placement:
    """Where the alias's servers are: what a topology keeps apart from ``kwargs``.

    ``kwargs`` is the connection kwargs with defaults applied. A Sentinel alias's
    connections get their host and port from the sentinels, a Cluster alias's from the
    cluster, so neither keeps ``host``/``port`` (nor Cluster ``db``).
    """
    kind = kind_of(options)
    if kind == SENTINEL:
        return _place_sentinel(options, kwargs, transport)
    if kind == CLUSTER:
        return _place_cluster(where, options, kwargs, transport)
    host = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    if transport == UNIX:
        address = f"unix://{kwargs.get('path', '')}?db={kwargs.get('db', 0)}"
    else:
        address = masked_address(kwargs, transport, host, path=f"/{kwargs.get('db', 0)}")
    return Placement(STANDALONE, Discovery(), dict(kwargs), address, [])


def _place_sentinel(
    options: Mapping[str, Any], kwargs: Mapping[str, Any], transport: Transport
) -> Placement:
    sentinels = tuple((h, p) for h, p in options["sentinels"])
    service = str(options["service_name"])
    discovery = Discovery(
        sentinels=sentinels,
        service_name=service,
        sentinel_kwargs=_sentinel_kwargs(kwargs, options.get("sentinel_kwargs") or {}),
    )
    hosts = ",".join(f"{h}:{p}" for h, p in sentinels)
    path = f"/{service}/{kwargs.get('db', 0)}"
    address = masked_address(kwargs, transport, hosts, kind=SENTINEL, path=path)
    return Placement(SENTINEL, discovery, dict(kwargs), address, [])


def _place_cluster(
    where: str, options: Mapping[str, Any], kwargs: Mapping[str, Any], transport: Transport
) -> Placement:
    found: list[Problem] = []
    if transport == UNIX:
        found.append(
            Problem("redis_pool.E033", f"{where} selects Redis Cluster, which has no unix sockets.")
        )
    rest = {k: v for k, v in kwargs.items() if k not in ("db", "host", "port")}
    db = kwargs.get("db", 0)
    if db:
        found.append(
            Problem(
                "redis_pool.E033",
                f"{where} selects Redis Cluster with db={db!r}: a cluster has database 0 only.",
                "Remove the database number (or use 0).",
            )
        )
    nodes: list[Node] = []
    host, port = kwargs.get("host"), kwargs.get("port")
    if host is not None or port is not None or "startup_nodes" not in options:
        nodes.append((host or "localhost", port or 6379))
    for h, p in options.get("startup_nodes") or ():
        if (h, p) not in nodes:
            nodes.append((h, p))
    address = masked_address(
        kwargs, transport, ",".join(f"{h}:{p}" for h, p in nodes), kind=CLUSTER
    )
    return Placement(CLUSTER, Discovery(startup_nodes=tuple(nodes)), rest, address, found)


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
