"""``CACHES[name]`` for this backend: ``LOCATION`` is a ``REDIS_POOL`` alias, ``OPTIONS`` hold
cache behaviour only. Connection settings live in one place, the alias: an option that
configures a connection is refused with the place to move it to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

CLEAR_MODES = ("prefix", "flushdb")

# What Django's RedisCache and django-redis accept in OPTIONS for the connection: named so
# that the error can say where each belongs instead of just "unknown".
CONNECTION_OPTIONS = frozenset(
    {
        "db",
        "password",
        "username",
        "pool_class",
        "parser_class",
        "max_connections",
        "socket_timeout",
        "socket_connect_timeout",
        "retry_on_timeout",
        "health_check_interval",
        "ssl",
        "ssl_cert_reqs",
        "CLIENT_CLASS",
        "CONNECTION_POOL_CLASS",
        "CONNECTION_POOL_KWARGS",
        "CONNECTION_POOL_CLASS_KWARGS",
        "CONNECTION_FACTORY",
        "PARSER_CLASS",
        "PASSWORD",
        "SOCKET_TIMEOUT",
        "SOCKET_CONNECT_TIMEOUT",
        "REDIS_CLIENT_CLASS",
        "REDIS_CLIENT_KWARGS",
        "SENTINELS",
        "SENTINEL_KWARGS",
    }
)
# Value formats other than Django's would break the promise that Django's backend and this
# one read each other's entries.
FORMAT_OPTIONS = frozenset({"serializer", "SERIALIZER", "COMPRESSOR", "PICKLE_VERSION"})


@dataclass(frozen=True)
class CacheOptions:
    alias: str
    ignore_exceptions: bool = False
    log_ignored_exceptions: bool = True
    clear: str = "prefix"


def parse(location: Any, options: Any) -> CacheOptions:
    """The backend's settings, or ImproperlyConfigured naming the setting and the fix.

    Messages name the LOCATION: Django does not tell a backend its CACHES key.
    """
    where = f"CACHES[...] with BACKEND 'redis_pool.cache.RedisCache' and LOCATION {location!r}"
    if not isinstance(location, str) or not location or any(c in location for c in ";,/:"):
        raise ImproperlyConfigured(
            f"{where}: LOCATION must be the name of one REDIS_POOL alias (e.g. 'default'), "
            "not a URL or a list of servers; the alias holds the connection settings."
        )
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ImproperlyConfigured(f"{where}: OPTIONS must be a dict.")
    for key in options:
        if key in CONNECTION_OPTIONS:
            raise ImproperlyConfigured(
                f"{where}: OPTIONS[{key!r}] configures the connection; connection settings "
                f"belong in REDIS_POOL[{location!r}] (one pool per alias, shared with "
                "get_redis()), not in CACHES."
            )
        if key in FORMAT_OPTIONS:
            raise ImproperlyConfigured(
                f"{where}: OPTIONS[{key!r}] is not supported: values are stored exactly as "
                "Django's own RedisCache stores them (pickle, integers as text), so that "
                "either backend reads the other's entries."
            )
    for key in ("MAX_ENTRIES", "CULL_FREQUENCY"):
        if key in options:
            raise ImproperlyConfigured(
                f"{where}: OPTIONS[{key!r}] does not apply: Redis evicts by its own "
                "maxmemory-policy (set it on the server), as with Django's RedisCache."
            )
    known = {"IGNORE_EXCEPTIONS", "LOG_IGNORED_EXCEPTIONS", "CLEAR"}
    unknown = sorted(str(k) for k in options if k not in known)
    if unknown:
        raise ImproperlyConfigured(
            f"{where}: unknown OPTIONS {', '.join(repr(k) for k in unknown)}; "
            f"accepted: {', '.join(sorted(known))}."
        )
    for flag in ("IGNORE_EXCEPTIONS", "LOG_IGNORED_EXCEPTIONS"):
        if flag in options and not isinstance(options[flag], bool):
            raise ImproperlyConfigured(f"{where}: OPTIONS[{flag!r}] must be True or False.")
    clear = options.get("CLEAR", "prefix")
    if clear not in CLEAR_MODES:
        raise ImproperlyConfigured(
            f"{where}: OPTIONS['CLEAR'] must be 'prefix' (delete this cache's keys only, the "
            f"default) or 'flushdb' (Django's behaviour: empty the whole database); "
            f"got {clear!r}."
        )
    return CacheOptions(
        alias=location,
        ignore_exceptions=options.get("IGNORE_EXCEPTIONS", False),
        log_ignored_exceptions=options.get("LOG_IGNORED_EXCEPTIONS", True),
        clear=clear,
    )
