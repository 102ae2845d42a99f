"""The keys REDIS_POOL accepts, and the one validator per key.

Shared by ``alias.py`` (connection keys) and ``topologies.py`` (Sentinel and Cluster keys):
neither imports the other.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from functools import cache
from typing import Any, Final, Literal

from redis import Redis
from redis.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.retry import Retry

DEFAULT_ALIAS: Final = "default"
ALIAS_RE = re.compile(r"[A-Za-z0-9_.\-]+")  # used with fullmatch: "default\n" is no name

Topology = Literal["standalone", "sentinel", "cluster"]
STANDALONE: Final = "standalone"
SENTINEL: Final = "sentinel"
CLUSTER: Final = "cluster"

Transport = Literal["tcp", "ssl", "unix"]
TCP: Final = "tcp"
SSL: Final = "ssl"
UNIX: Final = "unix"

SENTINEL_KEYS = frozenset({"sentinels", "service_name", "sentinel_kwargs"})
CLUSTER_KEYS = frozenset({"cluster", "startup_nodes"})
TOPOLOGY_KEYS = SENTINEL_KEYS | CLUSTER_KEYS

# redis_pool's own keys, beside redis-py's keyword arguments.
OWN_KEYS = frozenset(
    {
        "url",
        "pool_timeout",
        "ssl",
        # stats publishing and leak detection (monitor.py, leaks.py; docs: statistics)
        "publish_stats",
        "publish_interval",
        "leak_detection_threshold",
        # Sentinel and Cluster (config/topologies.py; docs: topologies)
        *TOPOLOGY_KEYS,
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

# socket.settimeout() overflows near 1e10 s; nobody means more than a year.
MAX_SECONDS = 31_536_000
# SELECT takes a C int; Redis's own limit ("databases") is far lower.
MAX_DB = 2**31 - 1
# redis-py's blocking pool pre-fills a queue with max_connections slots: 2**31 (the old
# redis-py default people copy) would allocate 16 GB and stall ready() for minutes;
# 100,000 takes ~0.1 s. No single process needs more (Redis's maxclients is 10,000).
MAX_CONNECTIONS_LIMIT = 100_000
# Above this a pool is "effectively unbounded": W001.
UNBOUNDED_THRESHOLD = 10_000


def _params(*callables: Any) -> frozenset[str]:
    names: set[str] = set()
    for func in callables:
        for name, param in inspect.signature(func).parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                names.add(name)
    return frozenset(names)


@cache
def keys_by_transport() -> dict[Transport, frozenset[str]]:
    """The keys each transport accepts: redis-py's signatures (of the installed version),
    plus ours, minus the reserved ones."""
    pool = _params(ConnectionPool.__init__) - {"connection_class"}
    base = _params(AbstractConnection.__init__) | pool | OWN_KEYS | {"connection_class"}
    tcp = base | _params(Connection.__init__)
    return {
        TCP: tcp - RESERVED_KEYS,
        SSL: (tcp | _params(SSLConnection.__init__)) - RESERVED_KEYS,
        UNIX: (base | _params(UnixDomainSocketConnection.__init__)) - RESERVED_KEYS,
    }


@cache
def known_keys() -> frozenset[str]:
    """Every key REDIS_POOL accepts for some transport."""
    keys = keys_by_transport()
    return keys[TCP] | keys[SSL] | keys[UNIX]


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


def did_you_mean(word: str, choices: frozenset[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return f"Did you mean {close[0]!r}?" if close else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds_problem(key: str, value: Any) -> str | None:
    if value is None and key in NUMBER_OR_NONE_KEYS:
        return None
    ok = _is_number(value) and math.isfinite(value) and 0 < value <= MAX_SECONDS
    expected = f"a positive number of seconds of at most {MAX_SECONDS}"
    return None if ok else expected + (" or None" if key in NUMBER_OR_NONE_KEYS else "")


def type_problem(key: str, value: Any) -> str | None:
    """What ``value`` must be, if it is not acceptable for ``key``; None if it is.

    The one validator per key: applied to the merged options, whether a value came from a
    key or from the url (its path, netloc or query string), and to ``sentinel_kwargs``.
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
        return _seconds_problem(key, value)
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
