"""An alias's settings, parsed for redis-py's sync pools, translated for redis.asyncio."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis import connection as sync_connection
from redis._parsers import (
    _AsyncHiredisParser,
    _AsyncRESP2Parser,
    _AsyncRESP3Parser,
    _HiredisParser,
    _RESP2Parser,
    _RESP3Parser,
)
from redis._parsers.base import AsyncBaseParser
from redis.asyncio import connection as async_connection

from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import default_client_name
from redis_pool.pools.connections import instrumented_connection_class
from redis_pool.pools.retry import async_retry

# config/ resolves settings to redis-py's sync classes; these are their asyncio twins.
ASYNC_CONNECTION: dict[type[Any], type[Any]] = {
    sync_connection.Connection: async_connection.Connection,
    sync_connection.SSLConnection: async_connection.SSLConnection,
    sync_connection.UnixDomainSocketConnection: async_connection.UnixDomainSocketConnection,
}


ASYNC_PARSER: dict[type[Any], type[Any]] = {
    _HiredisParser: _AsyncHiredisParser,
    _RESP2Parser: _AsyncRESP2Parser,
    _RESP3Parser: _AsyncRESP3Parser,
}


@cache
def _accepted_keys(connection_class: type[Any]) -> frozenset[str]:
    """Keyword arguments an asyncio connection class (or its pool) accepts."""
    names: set[str] = set()
    callables = [async_connection.ConnectionPool.__init__]
    callables += [
        klass.__dict__["__init__"]
        for klass in connection_class.__mro__
        if "__init__" in klass.__dict__ and issubclass(klass, async_connection.AbstractConnection)
    ]
    for func in callables:
        for name, param in inspect.signature(func).parameters.items():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                names.add(name)
    return frozenset(names - {"self"})


def _is_async_connection_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, async_connection.AbstractConnection)


def async_kwargs(config: PoolConfig) -> dict[str, Any]:
    """``config.kwargs`` (built for redis-py's sync pool) translated for ``redis.asyncio``.

    Raises ``ImproperlyConfigured`` naming the alias and key for a setting redis.asyncio
    has no equivalent of. Never includes a secret value in the message.
    """
    where = f"REDIS_POOL[{config.alias!r}]"
    kwargs = dict(config.kwargs)
    sync_class = kwargs["connection_class"]
    conn_class: Any = ASYNC_CONNECTION.get(sync_class, sync_class)
    if not _is_async_connection_class(conn_class):
        raise ImproperlyConfigured(
            f"{where}['connection_class'] is {sync_class!r}, which aget_redis() cannot use: "
            "redis.asyncio needs its own connection classes."
        )
    kwargs["connection_class"] = instrumented_connection_class(conn_class)
    unsupported = sorted(set(kwargs) - _accepted_keys(conn_class) - {"connection_class"})
    if unsupported:
        raise ImproperlyConfigured(
            f"{where} sets {', '.join(map(repr, unsupported))}, which redis.asyncio does not "
            "support, so aget_redis() cannot build this alias."
        )
    if "retry" in kwargs:
        kwargs["retry"] = async_retry(kwargs["retry"])
    parser = kwargs.get("parser_class")
    if parser is not None and not (
        isinstance(parser, type) and issubclass(parser, AsyncBaseParser)
    ):
        if parser not in ASYNC_PARSER:
            raise ImproperlyConfigured(
                f"{where}['parser_class'] is {parser!r}, which has no redis.asyncio twin."
            )
        kwargs["parser_class"] = ASYNC_PARSER[parser]
    if not config.client_name_set:
        # The parsed name carries the pid of the process that parsed settings; a pool is
        # built later, maybe in a forked child, which must name its own connections.
        kwargs["client_name"] = default_client_name(config.alias)
    return kwargs
