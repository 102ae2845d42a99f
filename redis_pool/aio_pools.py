"""redis-py asyncio pools that count into ``stats.Counters``, built from a ``PoolConfig``.

The async twin of ``pools.py``: subclasses of ``redis.asyncio``'s pools, so redis-py's own
locking and health checks stay in charge. ``build_async()`` is the one place that turns a
parsed alias into an async client; ``aio.py`` keeps one result per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from time import perf_counter
from typing import Any

import redis.asyncio
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
from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import AuthenticationError, MaxConnectionsError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry as SyncRetry

from redis_pool import monitor
from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import default_client_name
from redis_pool.config.keys import STANDALONE
from redis_pool.exceptions import PoolExhaustedError
from redis_pool.leaks import capture, note_late_return, scan
from redis_pool.pools import InstrumentedPoolMixin, auth_failure
from redis_pool.stats import Counters, PoolStats

# config/ resolves settings to redis-py's sync classes; these are their asyncio twins.
_ASYNC_CONNECTION: dict[type[Any], type[Any]] = {
    sync_connection.Connection: async_connection.Connection,
    sync_connection.SSLConnection: async_connection.SSLConnection,
    sync_connection.UnixDomainSocketConnection: async_connection.UnixDomainSocketConnection,
}
_ASYNC_PARSER: dict[type[Any], type[Any]] = {
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
    conn_class: Any = _ASYNC_CONNECTION.get(sync_class, sync_class)
    if not _is_async_connection_class(conn_class):
        raise ImproperlyConfigured(
            f"{where}['connection_class'] is {sync_class!r}, which aget_redis() cannot use: "
            "redis.asyncio needs its own connection classes."
        )
    kwargs["connection_class"] = instrumented_async_connection_class(conn_class)
    unsupported = sorted(set(kwargs) - _accepted_keys(conn_class) - {"connection_class"})
    if unsupported:
        raise ImproperlyConfigured(
            f"{where} sets {', '.join(map(repr, unsupported))}, which redis.asyncio does not "
            "support, so aget_redis() cannot build this alias."
        )
    retry = kwargs.get("retry")
    if isinstance(retry, SyncRetry):
        # redis-py has no public sync->async Retry conversion; both keep their whole
        # state in these AbstractRetry attributes.
        kwargs["retry"] = AsyncRetry(
            copy.deepcopy(retry._backoff),
            retry.get_retries(),
            retry._supported_errors,  # type: ignore[arg-type]
        )
    parser = kwargs.get("parser_class")
    if parser is not None and not (
        isinstance(parser, type) and issubclass(parser, AsyncBaseParser)
    ):
        if parser not in _ASYNC_PARSER:
            raise ImproperlyConfigured(
                f"{where}['parser_class'] is {parser!r}, which has no redis.asyncio twin."
            )
        kwargs["parser_class"] = _ASYNC_PARSER[parser]
    if not config.client_name_set:
        # The parsed name carries the pid of the process that parsed settings; a pool is
        # built later, maybe in a forked child, which must name its own connections.
        kwargs["client_name"] = default_client_name(config.alias)
    return kwargs


@cache
def instrumented_async_connection_class(base: type[Any]) -> type[Any]:
    """A subclass of the asyncio connection ``base`` reporting opens, closes and errors."""

    class Instrumented(base):  # type: ignore[misc]
        _rp_counters: Counters | None = None
        _rp_open = False
        _rp_out: float | None = None
        _rp_stack: Any = None
        _rp_alias: str | None = None

        async def on_connect_check_health(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super().on_connect_check_health(*args, **kwargs)
            except AuthenticationError as exc:
                raise auth_failure(exc, self._rp_alias, self._host_error()) from None

        async def _connect(self) -> None:
            start = perf_counter()
            try:
                await super()._connect()
            except Exception:
                if self._rp_counters is not None:
                    self._rp_counters.add("errors")
                raise
            if self._rp_counters is not None:
                self._rp_counters.connected(perf_counter() - start)
            self._rp_open = True

        def _rp_closed(self) -> None:
            if self._rp_open and self._writer is None:
                self._rp_open = False
                if self._rp_counters is not None:
                    self._rp_counters.add("closed")

        def _close(self) -> None:
            # The synchronous close redis-py uses outside a task (and in __del__).
            super()._close()
            self._rp_closed()

        async def disconnect(
            self, nowait: bool = False, error: Exception | None = None, **kwargs: Any
        ) -> None:
            # redis-py drops an open connection with nowait=True (or error=...) exactly when
            # a send or read failed or timed out, or a health check failed: counting here
            # keeps the per-command path free of wrappers of ours.
            if (nowait or error is not None) and self._rp_open and self._rp_counters:
                self._rp_counters.add("errors")
            try:
                await super().disconnect(nowait=nowait, error=error, **kwargs)
            finally:
                self._rp_closed()

    Instrumented.__name__ = Instrumented.__qualname__ = base.__name__
    Instrumented.__module__ = base.__module__
    return Instrumented


# What a waiter's future receives when its pool_timeout runs out.
_TIMED_OUT: Any = object()


def _expire(turn: asyncio.Future[Any]) -> None:
    if not turn.done():
        turn.set_result(_TIMED_OUT)


class AsyncInstrumentedPool:
    """Counts checkouts, returns and exhaustion of one alias's pool on one event loop.

    Mirrors ``pools.InstrumentedPoolMixin`` with coroutines, and reuses its ``stats()`` so
    sync and async pools report the same ``PoolStats``.
    """

    alias: str
    address: str
    counters: Counters
    max_connections: int
    timeout: float | None = None
    can_get_connection: Callable[[], Any]  # redis-py's
    get_available_connection: Callable[[], Any]  # redis-py's
    # Set when settings changed: the pool takes no new work; returned connections close.
    retired = False

    _rp_leak_threshold: float | None = None
    _rp_monitored = False
    _rp_blocking = False

    def _rp_setup(self, config: PoolConfig) -> None:
        self.alias = config.alias
        self.address = config.address
        self._rp_leak_threshold = config.leak_detection_threshold
        self.counters = Counters(self._rp_leak_threshold)
        self._rp_monitored = monitor.wanted(config)
        self._rp_waiters: deque[asyncio.Future[Any]] = deque()

    def make_connection(self) -> Any:
        connection = super().make_connection()  # type: ignore[misc]
        connection._rp_counters = self.counters
        connection._rp_alias = self.alias
        if self._rp_monitored:
            # An async-only process must publish its stats too; as in pools.py, only new
            # connections get here, and the call is one comparison once the thread runs.
            monitor.ensure_running()
        return connection

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        # The event loop's thread is the only writer of these counters, like the sync
        # pools' critical sections: plain adds, no lock (stats.Counters.checked_out).
        if self._rp_blocking:
            return await self._rp_get_in_turn()
        try:
            connection = await super().get_connection()  # type: ignore[misc]
        except RedisConnectionError as exc:
            raise self._rp_exhausted(exc) from None
        return self._rp_checked_out(connection)

    # -- the blocking pool's line: first come, first served ------------------------------
    # redis-py's asyncio blocking pool wakes a waiter with a Condition, and the task that
    # released the connection (still running) takes it back on its next command before the
    # woken waiter runs: with 64 tasks on 8 connections, 56 starve into PoolExhaustedError.
    # Here a returned connection is handed to the oldest waiter's future directly, and a
    # checkout queues behind anyone already waiting. Every decision is made without an
    # await in between, so it is atomic on the loop.

    async def _rp_get_in_turn(self) -> Any:
        if self._rp_waiters or not self.can_get_connection():
            connection = await self._rp_wait()
        else:
            connection = self.get_available_connection()
        try:
            await self.ensure_connection(connection)  # type: ignore[attr-defined]
        except BaseException:
            await self.release(connection)  # not counted out: released uncounted
            raise
        return self._rp_checked_out(connection)

    async def _rp_wait(self) -> Any:
        counters = self.counters
        counters.waits += 1
        counters.waiting += 1
        start = perf_counter()
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[Any] = loop.create_future()
        self._rp_waiters.append(turn)
        timer = None if self.timeout is None else loop.call_later(self.timeout, _expire, turn)
        try:
            connection = await turn
        except BaseException:
            # Cancelled (a timeout of the caller's, a client gone): leave the line, and
            # pass on a connection handed over meanwhile, or nobody would ever get it.
            self._rp_withdraw(turn)
            raise
        finally:
            counters.waiting -= 1
            counters.waited(perf_counter() - start)  # as the sync pool: count == waits
            if timer is not None:
                timer.cancel()
        if connection is _TIMED_OUT:
            with contextlib.suppress(ValueError):  # a return may have dropped it already
                self._rp_waiters.remove(turn)
            counters.wait_timeouts += 1
            counters.exhausted += 1
            raise PoolExhaustedError(self.alias, self.max_connections, self.timeout)
        return connection

    def _rp_withdraw(self, turn: asyncio.Future[Any]) -> None:
        if turn.done() and not turn.cancelled():
            connection = turn.result()
            if connection is not _TIMED_OUT:
                self._rp_hand_on(connection)
        with contextlib.suppress(ValueError):
            self._rp_waiters.remove(turn)

    def _rp_hand_on(self, connection: Any) -> None:
        """A checked-out ``connection`` to the oldest waiter, or back to the free list."""
        if not self._rp_hand_off(connection):
            pool: Any = self
            pool._in_use_connections.discard(connection)
            pool._available_connections.append(connection)

    def _rp_serve(self) -> None:
        """Give free slots to waiters that queued while a return was on its way."""
        waiters = self._rp_waiters
        while waiters and self.can_get_connection():
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(self.get_available_connection())

    def _rp_exhausted(self, exc: RedisConnectionError) -> Exception:
        """``exc`` as ``PoolExhaustedError`` if it says the pool had no connection."""
        if isinstance(exc, MaxConnectionsError):  # plain pool
            waited = None
        elif isinstance(exc.__cause__, asyncio.TimeoutError):  # blocking pool, timed out
            waited = self.timeout
        else:
            return exc
        self.counters.exhausted += 1
        return PoolExhaustedError(self.alias, self.max_connections, waited)

    def _rp_checked_out(self, connection: Any) -> Any:
        connection._rp_out = perf_counter()
        counters = self.counters
        counters.checked_out()
        if counters.capture_stacks:
            connection._rp_stack = capture()
        return connection

    async def release(self, connection: Any) -> None:
        out = connection._rp_out
        counters = self.counters
        # Only count returns of connections we counted out (get_connection also releases
        # a connection whose connect failed, before handing it out).
        if out is not None and connection._rp_counters is counters:
            connection._rp_out = None
            held = perf_counter() - out
            counters.returned(held)
            if held > counters.leak_limit:
                note_late_return(counters, connection, out, held)
                # The monitor thread scans the registry's pools only: log it from here
                # (a rare path: the connection was held past the threshold).
                scan(self.alias, counters, ())
        if self._rp_waiters and not self._rp_passed(connection):
            if connection.should_reconnect():
                await connection.disconnect()
            if self._rp_hand_off(connection):
                return
        if self.retired:
            await connection.disconnect()  # still in use by us: nobody else can take it
        await super().release(connection)  # type: ignore[misc]
        if self._rp_blocking:
            self._rp_serve()

    def _rp_passed(self, connection: Any) -> bool:
        """Whether ``connection`` is not this pool's to hand over (redis-py's release then
        decides what to do with it)."""
        pool: Any = self
        return connection not in pool._in_use_connections

    def _rp_hand_off(self, connection: Any) -> bool:
        """Give ``connection`` (still counted in use) to the oldest live waiter, if any."""
        waiters = self._rp_waiters
        while waiters:
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(connection)
                return True
        return False

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters; never touches the pool or the network."""
        # Same fields, same meaning as the sync pools': one implementation.
        return InstrumentedPoolMixin.stats(self)  # type: ignore[arg-type]


class AsyncRedisPool(AsyncInstrumentedPool, redis.asyncio.ConnectionPool):
    """Plain asyncio pool: fails at once when all ``max_connections`` are in use."""

    def __init__(self, config: PoolConfig, kwargs: dict[str, Any]) -> None:
        self._rp_setup(config)
        super().__init__(max_connections=config.max_connections, **kwargs)


class AsyncBlockingRedisPool(AsyncInstrumentedPool, redis.asyncio.BlockingConnectionPool):
    """Blocking asyncio pool: a task waits up to ``pool_timeout`` seconds for a connection."""

    _rp_blocking = True

    def __init__(self, config: PoolConfig, kwargs: dict[str, Any]) -> None:
        self._rp_setup(config)
        super().__init__(
            max_connections=config.max_connections, timeout=config.pool_timeout, **kwargs
        )


@dataclass
class AsyncEntry:
    """One alias on one event loop: its client, and what closing it takes.

    A topology with several pools (Cluster: one per node) keeps this interface.
    """

    config: PoolConfig
    client: redis.asyncio.Redis
    pool: AsyncRedisPool | AsyncBlockingRedisPool

    def retire(self) -> None:
        self.pool.retired = True

    def connected(self) -> bool:
        """Whether any of its connections is open."""
        return any(connection.is_connected for connection in self.connections())

    async def aclose(self, *, in_use: bool = True) -> None:
        """Disconnect the pool's connections; ``in_use=False`` leaves borrowed ones."""
        await self.pool.disconnect(inuse_connections=in_use)

    def stats(self) -> list[PoolStats]:
        return [self.pool.stats()]

    def connections(self) -> list[Any]:
        pool = self.pool
        return [*pool._available_connections, *pool._in_use_connections]


def build_async(config: PoolConfig) -> AsyncEntry:
    """The async client of one alias, for the running event loop. Objects only: no network."""
    topology = config.topology
    if topology != STANDALONE:
        raise ImproperlyConfigured(
            f"REDIS_POOL[{config.alias!r}] is a {topology} alias: build_async() builds "
            "standalone aliases, redis_pool.aio.build_entry() builds every kind."
        )
    kwargs = async_kwargs(config)
    pool: AsyncRedisPool | AsyncBlockingRedisPool
    if config.pool_timeout is None:
        pool = AsyncRedisPool(config, kwargs)
    else:
        pool = AsyncBlockingRedisPool(config, kwargs)
    return AsyncEntry(config, redis.asyncio.Redis(connection_pool=pool), pool)
