"""Settings: read ``REDIS_POOL`` live and turn it into one ``PoolConfig`` per alias.

Everything here is pure: no network, no registry, never raises on bad input. Problems are
returned as data so that ``checks.py`` can report them and ``registry.py`` can refuse to
build the aliases they affect.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings as django_settings
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from redis_pool import conf_topologies

DEFAULT_ALIAS = "default"

# The defaults we apply where the user sets nothing. README "Settings reference" gives the
# reason for each; keep the two in step.
DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_SOCKET_CONNECT_TIMEOUT = 2.0
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_POOL_TIMEOUT = 2.0
DEFAULT_HEALTH_CHECK_INTERVAL = 30
DEFAULT_RETRIES = 2
# Above this a pool is "effectively unbounded": W001.
UNBOUNDED_THRESHOLD = 10_000
# redis-py's blocking pool pre-fills a queue with max_connections slots: 2**31 (the old
# redis-py default people copy) would allocate 16 GB and stall ready() for minutes;
# 100,000 takes ~0.1 s. No single process needs more (Redis's maxclients is 10,000).
MAX_CONNECTIONS_LIMIT = 100_000

Err = Callable[..., None]  # parse_alias's err(id, msg, hint=None)

SECRET_KEYS = frozenset({"password", "username", "ssl_password", "credential_provider"})
MASK = "********"

# redis_pool's own keys, beside redis-py's keyword arguments.
OWN_KEYS = frozenset(
    {
        "url",
        "pool_timeout",
        "ssl",
        # stats publishing and leak detection (monitor.py, leaks.py; README: Pool statistics)
        "publish_stats",
        "publish_interval",
        "leak_detection_threshold",
        # Sentinel and Cluster (conf_topologies.py; README, "Sentinel, Cluster, TLS and ACLs")
        *conf_topologies.KEYS,
    }
)

# Keys whose value type we check (redis-py would only fail at the first connection).
INT_KEYS = frozenset(
    {"port", "db", "max_connections", "health_check_interval", "socket_read_size", "protocol"}
)
NUMBER_OR_NONE_KEYS = frozenset(
    {"socket_timeout", "socket_connect_timeout", "pool_timeout", "leak_detection_threshold"}
)
POSITIVE_NUMBER_KEYS = frozenset({"publish_interval"})
BOOL_KEYS = frozenset(
    {
        "decode_responses",
        "retry_on_timeout",
        "socket_keepalive",
        "ssl",
        "ssl_check_hostname",
        "publish_stats",
        "cluster",
    }
)
STR_KEYS = frozenset(
    {
        "url",
        "host",
        "path",
        "client_name",
        "service_name",
        "encoding",
        "encoding_errors",
        "ssl_keyfile",
        "ssl_certfile",
        "ssl_ca_certs",
        "ssl_ca_path",
    }
)
STR_OR_NONE_KEYS = frozenset({"password", "username", "ssl_password"})
# Pool plumbing the user must not set: we choose the pool class and its queue.
RESERVED_KEYS = frozenset({"timeout", "queue_class", "event_dispatcher", "himport_registry"})

ALIAS_RE = re.compile(r"[A-Za-z0-9_.\-]+")  # used with fullmatch: "default\n" is no name
# socket.settimeout() overflows near 1e10 s; nobody means more than a year.
MAX_SECONDS = 31_536_000
# SELECT takes a C int; Redis's own limit ("databases") is far lower.
MAX_DB = 2**31 - 1


def _params(*callables: Any) -> frozenset[str]:
    names: set[str] = set()
    for func in callables:
        for name, param in inspect.signature(func).parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                names.add(name)
    return frozenset(names)


@cache
def _keys_by_transport() -> dict[str, frozenset[str]]:
    pool = _params(ConnectionPool.__init__) - {"connection_class"}
    base = _params(AbstractConnection.__init__) | pool | OWN_KEYS | {"connection_class"}
    tcp = base | _params(Connection.__init__)
    return {
        "tcp": tcp - RESERVED_KEYS,
        "ssl": (tcp | _params(SSLConnection.__init__)) - RESERVED_KEYS,
        "unix": (base | _params(UnixDomainSocketConnection.__init__)) - RESERVED_KEYS,
    }


def known_keys() -> frozenset[str]:
    """Every key REDIS_POOL accepts for some transport."""
    keys = _keys_by_transport()
    return keys["tcp"] | keys["ssl"] | keys["unix"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with REDIS_POOL; ``checks.py`` turns it into a CheckMessage."""

    id: str
    msg: str
    hint: str | None = None
    alias: str | None = None
    error: bool = True


@dataclass(frozen=True)
class PoolConfig:
    """One alias, parsed: what ``registry.py`` needs to build its pool and client."""

    alias: str
    # repr=False: both may hold a password, and a config may end up in a log or traceback.
    options: Mapping[str, Any] = field(repr=False)  # the user's dict as given, to detect changes
    kwargs: dict[str, Any] = field(repr=False)  # connection kwargs, defaults applied, url resolved
    max_connections: int
    pool_timeout: float | None  # None: plain pool, fails at once when exhausted
    address: str  # for display: credentials masked
    transport: str = "tcp"
    extra: dict[str, Any] = field(default_factory=dict)
    # Sentinel and Cluster (conf_topologies.py). For both, ``kwargs`` holds no host/port:
    # a Sentinel alias's master comes from ``sentinels``, a Cluster's nodes from the
    # cluster itself, found through ``startup_nodes``.
    topology: str = "standalone"  # "standalone", "sentinel" or "cluster"
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    startup_nodes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Parsed:
    configs: dict[str, PoolConfig]
    problems: list[Problem]
    errors_by_alias: dict[str, list[str]]
    aliases: list[str] = field(default_factory=list)  # every alias named, built or not
    # Errors about REDIS_POOL as a whole (E001): every alias is misconfigured.
    setting_errors: list[str] = field(default_factory=list)


def mask_url(url: object) -> str:
    """``url`` with any username and password replaced, safe to show anywhere.

    Does not trust ``urlsplit``: a password with an unescaped '/', '?' or '#' would end its
    netloc early. Everything between '://' and the last '@' is credentials, whatever it holds.
    """
    if not isinstance(url, str):
        return "<invalid url>"
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = f"{MASK}@{rest.rsplit('@', 1)[1]}"
    # unix:// URLs may carry credentials in the query string.
    rest = re.sub(r"(?i)((?:password|username|ssl_password)=)[^&#]*", rf"\g<1>{MASK}", rest)
    return f"{scheme}{sep}{rest}"


def redact(text: str, kwargs: Mapping[str, Any]) -> str:
    """``text`` with every secret value of ``kwargs`` replaced (for foreign error messages)."""
    for key in SECRET_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str) and value:
            text = text.replace(value, MASK)
    return text


def _url_problem(url: str, from_url: Mapping[str, Any] | None) -> str | None:
    """Why ``url`` is not usable, in our own words (redis-py's may quote the password)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "the scheme must be redis://, rediss:// or unix://"
    if from_url is None:
        return "it could not be parsed (a reserved character in the password must be %-escaped)"
    rest = url.split("://", 1)[1]
    authority, _, path = rest.rsplit("@", 1)[-1].partition("/")
    if url.startswith("unix://"):
        return None if from_url.get("path") else "it names no socket path"
    if "?" in authority or "#" in authority:
        return "it could not be parsed (a reserved character in the password must be %-escaped)"
    port = re.search(r":(\d+)$", authority)
    if port is not None and int(port[1]) == 0:  # redis-py would silently use 6379
        return "port 0 is not a port: use 1-65535, or leave it out for 6379"
    path = path.split("?", 1)[0].strip("/")
    if path and "db" not in from_url:
        return f"the path {path!r} is not a database number"
    return None


def _masked(value: Any, depth: int = 0) -> Any:
    """``value`` with anything that may hold a credential masked: a string that looks like
    a URL (or ``user:pw@host``), and the value of a secret key in a dict, at any depth."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value or "@" in value else value
    if depth > 4:
        return "..."
    if isinstance(value, Mapping):
        return {
            _masked(k, depth + 1): MASK
            if k in SECRET_KEYS and v is not None
            else _masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_masked(v, depth + 1) for v in value)
    if isinstance(value, (set, frozenset)):
        return {_masked(v, depth + 1) for v in value}
    return value


def show(key: str, value: Any) -> str:
    """repr() of a setting value for a message, with secrets masked."""
    if key in SECRET_KEYS and value is not None:
        return repr(MASK)
    text = repr(_masked(value))
    return text if len(text) <= 80 else text[:77] + "..."


def has_credentials(url: Any) -> bool:
    """Does ``url`` carry a username or password (the userinfo part or a query parameter)?"""
    return isinstance(url, str) and mask_url(url) != url


def _address(kwargs: Mapping[str, Any], transport: str) -> str:
    if transport == "unix":
        return f"unix://{kwargs.get('path', '')}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if transport == "ssl" else "redis"
    creds = f"{MASK}@" if kwargs.get("password") or kwargs.get("username") else ""
    host = kwargs.get("host", "localhost")
    return f"{scheme}://{creds}{host}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_problem(key: str, value: Any) -> str | None:
    """What ``value`` must be, if it is not acceptable for ``key``; None if it is.

    The one validator per key: applied to the merged options, whether a value came from a
    key or from the url (its path, netloc or query string).
    """
    if key == "db":
        if not _is_int(value):
            return "an integer"
        return None if 0 <= value <= MAX_DB else f"a database number from 0 to {MAX_DB}"
    if key == "port":
        if not _is_int(value):
            return "an integer"
        return None if 0 < value < 65536 else "between 1 and 65535"
    if key == "health_check_interval" and _is_int(value) and value < 0:
        return "an integer of at least 0"
    if key in INT_KEYS:
        return None if _is_int(value) else "an integer"
    if key in NUMBER_OR_NONE_KEYS or key in POSITIVE_NUMBER_KEYS:
        if value is None and key in NUMBER_OR_NONE_KEYS:
            return None
        ok = _is_number(value) and math.isfinite(value) and 0 < value <= MAX_SECONDS
        expected = f"a positive number of seconds of at most {MAX_SECONDS}"
        return None if ok else expected + (" or None" if key in NUMBER_OR_NONE_KEYS else "")
    if key == "retry":
        ok = value is None or isinstance(value, Retry)
        return None if ok else "a redis.retry.Retry object or None"
    if key == "host":
        if not isinstance(value, str):
            return "a string"
        ok = bool(value.strip()) and "\x00" not in value
        return None if ok else "a non-blank host name without NUL characters"
    if key in BOOL_KEYS:
        return None if isinstance(value, bool) else "True or False"
    if key in STR_KEYS:
        return None if isinstance(value, str) else "a string"
    if key in STR_OR_NONE_KEYS:
        return None if value is None or isinstance(value, str) else "a string or None"
    return None


def did_you_mean(word: str, choices: frozenset[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return f"Did you mean {close[0]!r}?" if close else None


def _is_single_form(raw: Mapping[Any, Any]) -> bool:
    """The rule (README "Two forms"): a dict with any connection key is one pool."""
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


def default_client_name(alias: str) -> str:
    """``redis_pool:<project>:<alias>:<host>:<pid>``: what CLIENT LIST groups by."""
    module = getattr(django_settings, "SETTINGS_MODULE", None) or os.environ.get(
        "DJANGO_SETTINGS_MODULE", "django"
    )
    project = module.split(".")[0]
    host = socket.gethostname().split(".")[0]
    name = f"redis_pool:{project}:{alias}:{host}:{os.getpid()}"
    # CLIENT SETNAME refuses spaces and newlines.
    return re.sub(r"\s", "_", name)


@cache
def shared_driver_info() -> Any:
    """One redis-py ``DriverInfo`` per process, naming us as an upstream driver.

    redis-py 8 builds one per connection otherwise, reading its package metadata each time
    (~0.7 ms per new connection). ``CLIENT INFO`` then shows
    ``lib-name=redis-py(django-redis-pool_v<version>)``. None on redis-py 7, which has none.
    """
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py 7
        return None
    try:
        from importlib.metadata import version

        ours = version("django-redis-pool")
    except Exception:  # running from a checkout that was never installed
        ours = "0"
    return DriverInfo().add_upstream_driver("django-redis-pool", ours)


def default_retry() -> Retry:
    # Retry only connection errors: a timeout already cost socket_timeout seconds, and
    # retrying it would multiply the time a slow Redis holds a worker.
    return Retry(
        ExponentialWithJitterBackoff(base=0.01, cap=0.1),
        DEFAULT_RETRIES,
        supported_errors=(RedisConnectionError,),
    )


def _check_keys(where: str, options: Mapping[Any, Any], err: Err) -> None:
    """E003: every key that is not a setting."""
    keys = known_keys()
    for key, value in options.items():
        if isinstance(key, str) and key in keys:
            continue
        hint = did_you_mean(key, keys) if isinstance(key, str) else None
        if key == "timeout":
            hint = (
                f"For how long one command may take, use 'socket_timeout': {show('', value)}; "
                f"for how long to wait for a free connection, 'pool_timeout': "
                f"{show('', value)}."
            )
        elif isinstance(key, str) and key in RESERVED_KEYS:
            hint = "redis_pool chooses this itself; use 'pool_timeout' to set the wait."
        got = f" (got {show('', value)})" if key == "timeout" else ""
        err(
            "redis_pool.E003",
            f"{where} has an unknown key {show('', key)}{got}.",
            hint or "Keys are redis-py ConnectionPool keyword arguments, plus 'url'.",
        )


def _parse_url(where: str, options: Mapping[str, Any], err: Err) -> dict[str, Any] | None:
    """The keyword arguments ``options['url']`` gives ({} without a url); None if invalid
    (E005, E003 for an unknown query parameter, E007 for a key set twice)."""
    url = conf_topologies.plain_url(options.get("url"))
    if not isinstance(url, str):
        return {}  # no url, or not a string (E004)
    try:
        from_url: dict[str, Any] | None = parse_url(url)  # type: ignore[no-untyped-call]
    except Exception:  # ValueError and friends; their text may quote the password
        from_url = None
    reason = _url_problem(url, from_url)
    if reason is not None or from_url is None:
        err(
            "redis_pool.E005",
            f"{where}['url'] is not a valid Redis URL: {show('url', url)} ({reason}).",
            "Use redis://[[user]:password@]host[:port][/db], rediss://... or "
            "unix:///path/to.sock[?db=N].",
        )
        return None
    keys = known_keys()
    for key in from_url:
        if key not in keys:
            hint = did_you_mean(key, keys)
            err(
                "redis_pool.E003",
                f"{where}['url'] has an unknown query parameter {key!r}.",
                hint or "Query parameters are redis-py connection keyword arguments.",
            )
    for key in from_url:
        if key in options and key != "connection_class":
            err(
                "redis_pool.E007",
                f"{where} sets {key!r} both in 'url' and as a key "
                f"(url gives {show(key, from_url[key])}, key gives {show(key, options[key])}).",
                "Set it in one place only.",
            )
    return from_url


def _check_values(
    where: str, options: Mapping[Any, Any], from_url: Mapping[str, Any], url: str, err: Err
) -> None:
    """E004 and E006: every value, from a key or from the url, through the one validator of
    its key, so that a value reaching redis-py is checked once, the same way."""
    try:
        query = set(parse_qs(urlsplit(url).query, keep_blank_values=True)) if from_url else set()
    except ValueError:  # parse_url accepted it, so this is only belt and braces
        query = set()
    values = [(k, v, f"{where}[{k!r}]") for k, v in options.items() if isinstance(k, str)]
    for key, value in from_url.items():
        if key not in options:
            label = "query parameter" if key in query else "gives"
            values.append((key, value, f"{where}['url'] {label} {key!r}"))
    max_connections_rule = f"must be a positive integer of at most {MAX_CONNECTIONS_LIMIT:,}"
    for key, value, label in values:
        expected = _type_problem(key, value)
        if expected is not None:
            err("redis_pool.E004", f"{label} must be {expected}, got {show(key, value)}.")
        elif (
            key == "max_connections"
            and not 0 < (1 if value is None else value) <= MAX_CONNECTIONS_LIMIT
        ):
            err("redis_pool.E006", f"{label} {max_connections_rule}, got {value!r}.")


def _transport(
    where: str, options: Mapping[str, Any], kwargs: dict[str, Any], err: Err
) -> str | None:
    """Pick the connection class (set in ``kwargs``); its transport, None if unusable.

    E004 for a connection_class that is not one, E008 for keys of another transport.
    """
    conn_class = kwargs.get("connection_class")
    if conn_class is None:
        if "path" in kwargs:
            conn_class = UnixDomainSocketConnection
        elif options.get("ssl"):
            conn_class = SSLConnection
        else:
            conn_class = Connection
        kwargs["connection_class"] = conn_class
    if not (isinstance(conn_class, type) and issubclass(conn_class, AbstractConnection)):
        err(
            "redis_pool.E004",
            f"{where}['connection_class'] must be a redis-py connection class, "
            f"got {show('connection_class', conn_class)}.",
        )
        return None
    transport = "tcp"
    if issubclass(conn_class, UnixDomainSocketConnection):
        transport = "unix"
    elif issubclass(conn_class, SSLConnection):
        transport = "ssl"
    allowed = _keys_by_transport()[transport]
    for key in options:
        if key not in allowed:
            err(
                "redis_pool.E008",
                f"{where}[{key!r}] does not apply to a {transport} connection.",
                "ssl_* keys need a rediss:// url or 'ssl': True; 'path' means a unix socket.",
            )
    if transport == "unix" and "host" in options:
        err("redis_pool.E007", f"{where} sets both 'path' (unix socket) and 'host'.")
    return transport


def _warnings(
    alias: str, where: str, options: Mapping[str, Any], max_connections: int
) -> list[Problem]:
    """W001 and W002, for an alias whose values are otherwise valid."""
    found: list[Problem] = []
    if max_connections > UNBOUNDED_THRESHOLD:
        found.append(
            Problem(
                "redis_pool.W001",
                f"{where}['max_connections'] is {max_connections}: effectively unbounded.",
                "Match it to the concurrency of one process (its threads or tasks).",
                alias,
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
                    alias,
                    error=False,
                )
            )
    return found


def _apply_defaults(alias: str, kwargs: dict[str, Any], transport: str) -> None:
    kwargs.setdefault("socket_connect_timeout", DEFAULT_SOCKET_CONNECT_TIMEOUT)
    kwargs.setdefault("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
    kwargs.setdefault("health_check_interval", DEFAULT_HEALTH_CHECK_INTERVAL)
    if "retry" not in kwargs:
        kwargs["retry"] = default_retry()
    if transport != "unix":
        kwargs.setdefault("socket_keepalive", True)
    if "client_name" not in kwargs:
        kwargs["client_name"] = default_client_name(alias)
    if not {"driver_info", "lib_name", "lib_version"} & kwargs.keys():
        driver_info = shared_driver_info()
        if driver_info is not None:
            kwargs["driver_info"] = driver_info


def parse_alias(alias: Any, options: Any) -> tuple[PoolConfig | None, list[Problem]]:
    """Parse one alias. Returns (config or None, problems); never raises.

    Every problem of the alias is reported at once (as Django reports every check): key
    names, url, values and topology keys are each checked whatever the others gave.
    """
    problems: list[Problem] = []

    def err(pid: str, msg: str, hint: str | None = None) -> None:
        problems.append(Problem(pid, msg, hint, str(alias)))

    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        err(
            "redis_pool.E009",
            f"REDIS_POOL alias {show('', alias)} is not a valid name.",
            "Use letters, digits, '_', '-' and '.' only.",
        )
        return None, problems
    where = f"REDIS_POOL[{alias!r}]"
    if not isinstance(options, Mapping):
        hint = did_you_mean(alias, known_keys())
        err(
            "redis_pool.E002",
            f"{where} must be a dict of connection options, got {type(options).__name__} "
            f"{show('', options)}.",
            hint or "In the several-pools form every value is a dict of options for that alias.",
        )
        return None, problems

    _check_keys(where, options, err)
    from_url = _parse_url(where, options, err)
    url = conf_topologies.plain_url(options.get("url"))
    _check_values(where, options, from_url or {}, url if isinstance(url, str) else "", err)
    kind = conf_topologies.check(where, options, err)
    if from_url is None:  # an invalid url: its transport is unknown, so stop here
        return None, problems
    keys = known_keys()
    options = {k: v for k, v in options.items() if k in keys}
    kwargs: dict[str, Any] = dict(from_url)
    kwargs.update({k: v for k, v in options.items() if k not in OWN_KEYS})

    transport = _transport(where, options, kwargs, err)
    if transport is None:
        return None, problems

    max_connections = kwargs.pop("max_connections", DEFAULT_MAX_CONNECTIONS)
    if max_connections is None:
        max_connections = DEFAULT_MAX_CONNECTIONS
    if problems:
        return None, problems

    problems += _warnings(alias, where, options, max_connections)
    _apply_defaults(alias, kwargs, transport)

    fields, topology_address = conf_topologies.finish(
        alias, where, kind, options, kwargs, transport, err
    )
    if any(problem.error for problem in problems):  # warnings (W001, W002) may be there
        return None, problems

    refusal = _dry_run(kwargs, max_connections)
    if refusal is not None:
        err(
            "redis_pool.E011",
            f"{where} is refused by redis-py: {refusal}",
            "A value has the wrong type or shape for redis-py's ConnectionPool.",
        )
        return None, problems

    pool_timeout = options.get("pool_timeout", DEFAULT_POOL_TIMEOUT)
    config = PoolConfig(
        alias=alias,
        options=dict(options),
        kwargs=kwargs,
        max_connections=max_connections,
        pool_timeout=pool_timeout,
        address=topology_address or _address(kwargs, transport),
        transport=transport,
        topology=fields.topology,
        sentinels=fields.sentinels,
        service_name=fields.service_name,
        sentinel_kwargs=fields.sentinel_kwargs,
        startup_nodes=fields.startup_nodes,
    )
    return config, problems


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
                f"argument fails; aliases: {', '.join(sorted(str(_masked(a)) for a in aliases))}.",
                error=False,
            )
        )
    names = [a for a in aliases if isinstance(a, str)]
    setting_errors = [p.msg for p in problems if p.alias is None and p.error]
    return Parsed(configs, problems, errors, names, setting_errors)


class Settings:
    """Every setting redis_pool reads, read live so override_settings() just works."""

    @property
    def REDIS_POOL(self) -> Any:
        return getattr(django_settings, "REDIS_POOL", None)

    @property
    def DEBUG(self) -> bool:
        return bool(getattr(django_settings, "DEBUG", False))

    @property
    def REDIS_POOL_MIDDLEWARE_ALIAS(self) -> Any:
        return getattr(django_settings, "REDIS_POOL_MIDDLEWARE_ALIAS", DEFAULT_ALIAS)

    def parsed(self) -> Parsed:
        return parse(self.REDIS_POOL)


conf = Settings()
