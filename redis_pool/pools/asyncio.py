"""The asyncio pools, one set per event loop (built by ``redis_pool.aio``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import redis.asyncio
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio import connection as async_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.utils import deprecated_args

from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import STANDALONE
from redis_pool.exceptions import PoolExhaustedError
from redis_pool.pools.async_kwargs import async_kwargs as async_kwargs
from redis_pool.pools.base import PoolCommon
from redis_pool.pools.connections import instrumented_connection_class
from redis_pool.stats.counters import PoolStats
from redis_pool.stats.leaks import capture, note_late_return, scan

# What a waiter's future receives when its pool_timeout runs out.
_TIMED_OUT: Any = object()


def _expire(turn: asyncio.Future[Any]) -> None:
    if not turn.done():
        turn.set_result(_TIMED_OUT)


async def _record_checkout(pool: Any, start: float, created: bool) -> None:
    """What redis-py's own asyncio blocking pool records in its OpenTelemetry metrics at a
    checkout (``redis.observability``, redis-py 7.4+), which our line bypasses: the wait,
    and the time to create a connection when the checkout made one (timed from the start
    of the checkout: the line decides which checkout creates it). Looked up on redis-py's
    module at call time, as its own pool does, so that whoever patches them is obeyed."""
    redis_py: Any = async_connection
    record_wait = getattr(redis_py, "record_connection_wait_time", None)
    if record_wait is None:
        return
    elapsed = time.monotonic() - start
    if created:
        await redis_py.record_connection_create_time(connection_pool=pool, duration_seconds=elapsed)
    await record_wait(pool_name=redis_py.get_pool_name(pool), duration_seconds=elapsed)


class AsyncInstrumentedPool(PoolCommon):
    """What the asyncio pools add to ``PoolCommon``: the fair line of the blocking pool,
    checkouts stamped and returns counted (``stats.counters.Counters``). The event loop's
    thread is the only writer of these counters, like the sync pools' critical sections:
    plain adds, no lock."""

    timeout: float | None = None
    can_get_connection: Callable[[], Any]  # redis-py's
    get_available_connection: Callable[[], Any]  # redis-py's
    _available_connections: list[Any]  # redis-py's
    _in_use_connections: set[Any]  # redis-py's
    # Set when settings changed: the pool takes no new work; returned connections close.
    retired = False
    _rp_blocking = False

    def _rp_init_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]
    ) -> dict[str, Any]:
        """redis.asyncio's constructor arguments, from either caller: ``aio.py`` passes
        ``(config, kwargs)``; anyone else passes redis-py's arguments (positional in the
        order ``names``), kept as given."""
        self._rp_waiters: deque[asyncio.Future[Any]] = deque()
        if args and isinstance(args[0], PoolConfig):
            config, kwargs = args[0], dict(args[1] if len(args) > 1 else kwargs)
            self._rp_setup(config)
            kwargs["max_connections"] = config.max_connections
            if config.pool_timeout is not None:
                kwargs["timeout"] = config.pool_timeout
            return kwargs  # async_kwargs() already chose the connection class
        kwargs = dict(kwargs, **dict(zip(names, args, strict=False)))
        self._rp_setup_direct(kwargs)
        kwargs["connection_class"] = instrumented_connection_class(
            kwargs.get("connection_class", async_connection.Connection)
        )
        return kwargs

    def _rp_in_use(self) -> int:
        return len(self._in_use_connections)

    def _rp_made(self) -> int:
        # redis.asyncio keeps every connection it made in one of its two collections.
        return len(self._available_connections) + len(self._in_use_connections)

    @deprecated_args(
        args_to_warn=["*"], reason="Use get_connection() without args instead", version="5.3.0"
    )
    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        # Arguments warn as redis-py's do (the decorator is redis-py's), and are unused.
        if self._rp_blocking:
            return await self._rp_get_in_turn()
        try:
            connection = await super().get_connection()  # type: ignore[misc]
        except RedisConnectionError as exc:
            error = self._rp_exhausted(exc)
            if error is exc:
                raise  # a connect error, with its cause
            raise error from None
        return self._rp_checked_out(connection)

    # -- the blocking pool's line: first come, first served ------------------------------
    # redis-py's asyncio blocking pool wakes a waiter with a Condition, and the task that
    # released the connection (still running) takes it back on its next command before the
    # woken waiter runs: with 64 tasks on 8 connections, 56 starve into PoolExhaustedError.
    # Here a returned connection is handed to the oldest waiter's future directly, and a
    # checkout queues behind anyone already waiting. Every decision is made without an
    # await in between, so it is atomic on the loop.

    async def _rp_get_in_turn(self) -> Any:
        start = time.monotonic()
        pool: Any = self
        before = len(pool._available_connections) + len(pool._in_use_connections)
        if self._rp_waiters or not self.can_get_connection():
            connection = await self._rp_wait()
        else:
            connection = self.get_available_connection()
        created = len(pool._available_connections) + len(pool._in_use_connections) > before
        try:
            await self.ensure_connection(connection)  # type: ignore[attr-defined]
            await _record_checkout(self, start, created)
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
            self._in_use_connections.discard(connection)
            self._available_connections.append(connection)

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
        # Stamped, not counted: the return counts (see stats.counters.Counters).
        connection._rp_out = perf_counter()
        if self.counters.capture_stacks:
            connection._rp_stack = capture()
        return connection

    async def release(self, connection: Any) -> None:
        # getattr: a connection of another pool gets redis-py's own error (KeyError).
        out = getattr(connection, "_rp_out", None)
        counters = self.counters
        # Only count returns of connections we counted out (get_connection also releases
        # a connection whose connect failed, before handing it out).
        if out is not None and connection._rp_counters is counters:
            connection._rp_out = None
            held = perf_counter() - out
            counters.held(held)
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
        return connection not in self._in_use_connections

    def _rp_hand_off(self, connection: Any) -> bool:
        """Give ``connection`` (still counted in use) to the oldest live waiter, if any."""
        waiters = self._rp_waiters
        while waiters:
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(connection)
                return True
        return False


class AsyncRedisPool(AsyncInstrumentedPool, redis.asyncio.ConnectionPool):
    """Plain asyncio pool: fails at once when all ``max_connections`` are in use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # AsyncRedisPool(config, kwargs), or redis.asyncio's ConnectionPool(connection_class,
        # max_connections, **connection_kwargs): see _rp_init_args.
        names = ("connection_class", "max_connections")
        super().__init__(**self._rp_init_args(args, kwargs, names))


class AsyncBlockingRedisPool(AsyncInstrumentedPool, redis.asyncio.BlockingConnectionPool):
    """Blocking asyncio pool: a task waits up to ``pool_timeout`` seconds for a connection."""

    _rp_blocking = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # AsyncBlockingRedisPool(config, kwargs), or redis.asyncio's
        # BlockingConnectionPool(max_connections, timeout, connection_class, queue_class, ...).
        names = ("max_connections", "timeout", "connection_class", "queue_class")
        super().__init__(**self._rp_init_args(args, kwargs, names))


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
