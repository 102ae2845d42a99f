"""One alias of REDIS_POOL, parsed into a typed ``PoolConfig``; the whole setting, ``parse()``.

Pure: no network, never raises on bad input. ``parse_alias`` is a pipeline of stages, each
a function of what the earlier ones gave; a stage reports what is wrong as ``Problem``s,
so that ``checks.py`` can report them and ``registry.py`` can refuse to build the aliases
they affect. Every problem of an alias is reported at once (as Django reports every
check): key names, url, values and topology keys are each checked whatever the others gave.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from redis.connection import ConnectionPool

from redis_pool.config import defaults, topologies
from redis_pool.config.keys import (
    ALIAS_RE,
    DEFAULT_ALIAS,
    OWN_KEYS,
    STANDALONE,
    TCP,
    UNBOUNDED_THRESHOLD,
    Topology,
    Transport,
    did_you_mean,
    known_keys,
)
from redis_pool.config.problems import Problem
from redis_pool.config.secrets import masked, redact, show
from redis_pool.config.topologies import Discovery
from redis_pool.config.validate import check_keys, check_values, parse_url, transport_of


@dataclass(frozen=True)
class PoolConfig:
    """One alias, parsed: what the pools, topologies and monitor need, typed."""

    alias: str
    # repr=False: both may hold a password, and a config may end up in a log or traceback.
    options: Mapping[str, Any] = field(repr=False)  # the user's dict as given, to detect changes
    kwargs: dict[str, Any] = field(repr=False)  # connection kwargs, defaults applied, url resolved
    max_connections: int
    pool_timeout: float | None  # None: plain pool, fails at once when exhausted
    address: str  # for display: credentials masked
    transport: Transport = TCP
    # Sentinel and Cluster: for both, ``kwargs`` holds no host/port; ``discovery`` says
    # where the servers are found (the sentinels, or the cluster's startup nodes).
    topology: Topology = STANDALONE
    discovery: Discovery = field(default_factory=Discovery)
    publish_stats: bool = True
    publish_interval: float = defaults.DEFAULT_PUBLISH_INTERVAL
    leak_detection_threshold: float | None = None
    # Did the user name the connections (a key, or the url)? If not, each process names
    # its own (``defaults.default_client_name``: the pid changes at a fork).
    client_name_set: bool = False


@dataclass(frozen=True)
class Parsed:
    configs: dict[str, PoolConfig]
    problems: list[Problem]
    errors_by_alias: dict[str, list[str]]
    aliases: list[str] = field(default_factory=list)  # every alias named, built or not
    # Errors about REDIS_POOL as a whole (E001): every alias is misconfigured.
    setting_errors: list[str] = field(default_factory=list)


def _is_single_form(raw: Mapping[Any, Any]) -> bool:
    """The rule (docs: "Two forms"): a dict with any connection key is one pool."""
    keys = known_keys()
    return not raw or any(isinstance(k, str) and k in keys for k in raw)


def split_aliases(raw: Any) -> tuple[dict[Any, Any], list[Problem]]:
    """Normalise both forms to ``{alias: options}``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return {}, [
            Problem(
                "redis_pool.E001",
                f"REDIS_POOL must be a dict, got {type(raw).__name__} {show('', raw)}.",
                hint="Use {'url': 'redis://...'} for one pool, or {'alias': {...}} for several.",
            )
        ]
    if _is_single_form(raw):
        return {DEFAULT_ALIAS: raw}, []
    return dict(raw), []


def _name_problems(alias: Any, options: Any) -> list[Problem]:
    """E009 for an alias that is no name, E002 for options that are no dict."""
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        return [
            Problem(
                "redis_pool.E009",
                f"REDIS_POOL alias {show('', alias)} is not a valid name.",
                "Use letters, digits, '_', '-' and '.' only.",
            )
        ]
    if not isinstance(options, Mapping):
        hint = did_you_mean(alias, known_keys())
        return [
            Problem(
                "redis_pool.E002",
                f"REDIS_POOL[{alias!r}] must be a dict of connection options, got "
                f"{type(options).__name__} {show('', options)}.",
                hint
                or "In the several-pools form every value is a dict of options for that alias.",
            )
        ]
    return []


def _warnings(where: str, options: Mapping[str, Any], max_connections: int) -> list[Problem]:
    """W001 and W002, for an alias whose values are otherwise valid."""
    found: list[Problem] = []
    if max_connections > UNBOUNDED_THRESHOLD:
        found.append(
            Problem(
                "redis_pool.W001",
                f"{where}['max_connections'] is {max_connections}: effectively unbounded.",
                "Match it to the concurrency of one process (its threads or tasks).",
                error=False,
            )
        )
    for key in ("socket_timeout", "socket_connect_timeout"):
        if key in options and options[key] is None:
            found.append(
                Problem(
                    "redis_pool.W002",
                    f"{where}[{key!r}] is None: a slow or unreachable Redis hangs the caller.",
                    "Remove the key to get the default, or set a number of seconds.",
                    error=False,
                )
            )
    return found


def _dry_run(kwargs: dict[str, Any], max_connections: int) -> str | None:
    """Run redis-py's own constructor checks on ``kwargs``: no I/O, and nothing recorded.

    redis-py accepts any keyword of its signatures and fails later on a bad value; a system
    check must catch that, not the first request. The pool is built (its constructor checks
    the pool-level keys and derives the per-connection ones) but never asked for a
    connection: ``make_connection()`` records the new connection in redis-py's OpenTelemetry
    metrics (``redis.observability``), where a throw-away one would stay as a phantom idle
    connection. The connection object is built from the pool's kwargs instead; neither
    constructor records anything (tests/test_dry_run_metrics.py holds redis-py to that).
    """
    try:
        pool = ConnectionPool(max_connections=max_connections, **kwargs)
        pool.connection_class(**pool.connection_kwargs)
    except Exception as exc:
        return redact(f"{type(exc).__name__}: {exc}", kwargs)
    return None


def _tagged(alias: Any, problems: list[Problem]) -> list[Problem]:
    return [replace(p, alias=str(alias)) for p in problems]


def parse_alias(alias: Any, options: Any) -> tuple[PoolConfig | None, list[Problem]]:
    """Parse one alias. Returns (config or None, problems); never raises."""
    problems = _name_problems(alias, options)
    if problems:
        return None, _tagged(alias, problems)
    where = f"REDIS_POOL[{alias!r}]"
    url = topologies.plain_url(options.get("url"))
    from_url, url_problems = parse_url(where, options, url)
    problems = [
        *check_keys(where, options),
        *url_problems,
        *check_values(where, options, from_url or {}, url if isinstance(url, str) else ""),
        *topologies.check(where, options),
    ]
    if from_url is None:  # an invalid url: its transport is unknown, so stop here
        return None, _tagged(alias, problems)
    keys = known_keys()
    options = {k: v for k, v in options.items() if k in keys}
    kwargs: dict[str, Any] = {
        **from_url,
        **{k: v for k, v in options.items() if k not in OWN_KEYS},
    }
    transport, kwargs, transport_problems = transport_of(where, options, kwargs)
    problems += transport_problems
    if transport is None or problems:
        return None, _tagged(alias, problems)
    return _finish(alias, where, options, kwargs, transport)


def _finish(
    alias: str,
    where: str,
    options: dict[str, Any],
    kwargs: dict[str, Any],
    transport: Transport,
) -> tuple[PoolConfig | None, list[Problem]]:
    """The stages after the keys and values are known to be valid: defaults, topology,
    redis-py's own constructor checks, and the typed config."""
    max_connections = kwargs.get("max_connections") or defaults.DEFAULT_MAX_CONNECTIONS
    problems = _warnings(where, options, max_connections)
    connection = {k: v for k, v in kwargs.items() if k != "max_connections"}
    connection = defaults.with_defaults(alias, connection, transport)
    placed = topologies.place(where, options, connection, transport)
    problems += placed.problems
    if any(problem.error for problem in problems):  # warnings (W001, W002) may be there
        return None, _tagged(alias, problems)
    refusal = _dry_run(placed.kwargs, max_connections)
    if refusal is not None:
        problems.append(
            Problem(
                "redis_pool.E011",
                f"{where} is refused by redis-py: {refusal}",
                "A value has the wrong type or shape for redis-py's ConnectionPool.",
            )
        )
        return None, _tagged(alias, problems)
    named = "client_name" in kwargs  # from a key or the url, before our default
    config = _config(alias, options, placed, transport, max_connections, named)
    return config, _tagged(alias, problems)


def _config(
    alias: str,
    options: dict[str, Any],
    placed: topologies.Placement,
    transport: Transport,
    max_connections: int,
    client_name_set: bool,
) -> PoolConfig:
    """The typed config: every option a consumer needs, read here once."""
    threshold = options.get("leak_detection_threshold")
    interval = options.get("publish_interval") or defaults.DEFAULT_PUBLISH_INTERVAL
    return PoolConfig(
        alias=alias,
        options=dict(options),
        kwargs=placed.kwargs,
        max_connections=max_connections,
        pool_timeout=options.get("pool_timeout", defaults.DEFAULT_POOL_TIMEOUT),
        address=placed.address,
        transport=transport,
        topology=placed.topology,
        discovery=placed.discovery,
        publish_stats=bool(options.get("publish_stats", True)),
        publish_interval=float(interval),
        leak_detection_threshold=None if threshold is None else float(threshold),
        client_name_set=client_name_set,
    )


def parse(raw: Any) -> Parsed:
    """Parse a whole REDIS_POOL value. Pure and total: bad input becomes Problems."""
    aliases, problems = split_aliases(raw)
    configs: dict[str, PoolConfig] = {}
    errors: dict[str, list[str]] = {}
    for alias, options in aliases.items():
        config, found = parse_alias(alias, options)
        problems.extend(found)
        if config is not None:
            configs[alias] = config
        else:
            errors[str(alias)] = [p.msg for p in found if p.error]
    if aliases and not problems and DEFAULT_ALIAS not in aliases:
        problems.append(
            Problem(
                "redis_pool.W003",
                f"REDIS_POOL has no {DEFAULT_ALIAS!r} alias, so get_redis() without an "
                f"argument fails; aliases: {', '.join(sorted(str(masked(a)) for a in aliases))}.",
                error=False,
            )
        )
    names = [a for a in aliases if isinstance(a, str)]
    setting_errors = [p.msg for p in problems if p.alias is None and p.error]
    return Parsed(configs, problems, errors, names, setting_errors)
