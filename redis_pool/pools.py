"""redis-py pools that count what they do, and name their connections per process.

Subclasses, not wrappers: redis-py's own locking, fork check (``_checkpid``) and health
checks stay in charge; we only add counters around ``get_connection`` / ``release`` and
on the socket open/close of each connection.
"""

from __future__ import annotations

import os
from functools import cache
from queue import Empty, LifoQueue
from time import monotonic, perf_counter
from typing import Any

from redis.connection import BlockingConnectionPool, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool.conf import PoolConfig, default_client_name
from redis_pool.stats import Counters, PoolStats


class PoolExhaustedError(MaxConnectionsError):
    """Every connection of an alias's pool is checked out (after waiting, if blocking)."""

    def __init__(self, alias: str, limit: int, waited: float | None) -> None:
        if waited is None:
            how = "it is a plain pool ('pool_timeout': None), so it does not wait"
        else:
            how = f"no connection came free within pool_timeout={waited:g}s"
        super().__init__(
            f"Redis pool {alias!r} is exhausted: all {limit} connections (max_connections) "
            f"are in use and {how}."
        )
        self.alias = alias
        self.limit = limit


class _PoolWaitTimeout(Empty):
    """Raised by our queue so the pool can tell a wait timeout from a connect error."""


class _CountingLifoQueue(LifoQueue[Any]):
    """The blocking pool's queue, counting callers that had to wait.

    Mirrors ``queue.Queue.get``; the counters are only touched under the queue's own
    mutex, so they need no other lock.
    """

    counters: Counters

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.not_empty:
            if not self._qsize():
                counters = self.counters
                counters.waits += 1
                counters.waiting += 1
                try:
                    if not block:
                        raise _PoolWaitTimeout
                    if timeout is None:
                        while not self._qsize():
                            self.not_empty.wait()
                    else:
                        deadline = monotonic() + timeout
                        while not self._qsize():
                            remaining = deadline - monotonic()
                            if remaining <= 0.0:
                                counters.wait_timeouts += 1
                                raise _PoolWaitTimeout
                            self.not_empty.wait(remaining)
                finally:
                    counters.waiting -= 1
            item = self._get()
            self.not_full.notify()
            return item


@cache
def instrumented_connection_class(base: type[Any]) -> type[Any]:
    """A subclass of ``base`` that reports socket opens, closes and errors."""

    class Instrumented(base):  # type: ignore[valid-type,misc]
        _rp_counters: Counters | None = None
        _rp_open = False

        def _connect(self) -> Any:
            try:
                sock = super()._connect()
            except Exception:
                if self._rp_counters is not None:
                    self._rp_counters.add("errors")
                raise
            if self._rp_counters is not None:
                self._rp_counters.add("created")
                self._rp_open = True
            return sock

        def disconnect(self, *args: Any, **kwargs: Any) -> None:
            super().disconnect(*args, **kwargs)
            if self._rp_open:
                self._rp_open = False
                if self._rp_counters is not None:
                    self._rp_counters.add("closed")

        def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().send_packed_command(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError):
                if self._rp_counters is not None:
                    self._rp_counters.add("errors")
                raise

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().read_response(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError):
                if self._rp_counters is not None:
                    self._rp_counters.add("errors")
                raise

    Instrumented.__name__ = Instrumented.__qualname__ = base.__name__
    Instrumented.__module__ = base.__module__
    return Instrumented


class InstrumentedPoolMixin:
    """Counts checkouts, returns, waits and exhaustion for one alias."""

    alias: str
    counters: Counters
    address: str
    _rp_default_name: bool
    max_connections: int
    connection_kwargs: dict[str, Any]

    def _rp_setup(self, config: PoolConfig) -> None:
        self.alias = config.alias
        self.address = config.address
        self.counters = Counters()
        self._rp_default_name = "client_name" not in config.options

    def reset(self) -> None:
        # reset() runs in __init__ and, through _checkpid(), first thing in a forked
        # child: a child starts with its own counters and its own client name.
        if getattr(self, "counters", None) is not None and self.counters.pid != os.getpid():
            self.counters = Counters()
            if self._rp_default_name:
                self.connection_kwargs["client_name"] = default_client_name(self.alias)
        super().reset()  # type: ignore[misc]

    def make_connection(self) -> Any:
        connection = super().make_connection()  # type: ignore[misc]
        connection._rp_counters = self.counters
        return connection

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        start = perf_counter()
        try:
            connection = super().get_connection()  # type: ignore[misc]
        except MaxConnectionsError:
            self.counters.add("exhausted")
            raise PoolExhaustedError(self.alias, self.max_connections, None) from None
        except RedisConnectionError as exc:
            if isinstance(exc.__context__, _PoolWaitTimeout):
                self.counters.add("exhausted")
                timeout = getattr(self, "timeout", None)
                raise PoolExhaustedError(self.alias, self.max_connections, timeout) from None
            raise
        now = perf_counter()
        connection._rp_out = now
        self.counters.on_checkout(now - start)
        return connection

    def release(self, connection: Any) -> None:
        out = getattr(connection, "_rp_out", None)
        # Only count returns of connections we counted out (get_connection also
        # releases a connection whose connect() failed, before handing it out).
        if out is not None and getattr(connection, "_rp_counters", None) is self.counters:
            connection._rp_out = None
            self.counters.on_release(perf_counter() - out)
        super().release(connection)  # type: ignore[misc]

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters; never touches the pool or the network."""
        counters = self.counters
        if counters.pid != os.getpid():
            # Forked, and not used in this process yet: nothing of the parent's counts here.
            counters = Counters()
        wait, hold = counters.timings()
        open_now = counters.created - counters.closed
        return PoolStats(
            alias=self.alias,
            pid=os.getpid(),
            pool_class=type(self).__name__,
            address=self.address,
            max_connections=self.max_connections,
            open=open_now,
            in_use=counters.in_use,
            idle=max(0, open_now - counters.in_use),
            waiting=counters.waiting,
            created=counters.created,
            closed=counters.closed,
            checkouts=counters.checkouts,
            releases=counters.releases,
            waits=counters.waits,
            wait_timeouts=counters.wait_timeouts,
            exhausted=counters.exhausted,
            errors=counters.errors,
            leaks=counters.leaks,
            high_water=counters.high_water,
            wait=wait,
            hold=hold,
            since=counters.since,
        )


class RedisPool(InstrumentedPoolMixin, ConnectionPool):
    """Plain pool: fails at once when all ``max_connections`` are in use."""

    def __init__(self, config: PoolConfig) -> None:
        self._rp_setup(config)
        kwargs = dict(config.kwargs)
        kwargs["connection_class"] = instrumented_connection_class(kwargs["connection_class"])
        super().__init__(max_connections=config.max_connections, **kwargs)


class BlockingRedisPool(InstrumentedPoolMixin, BlockingConnectionPool):
    """Blocking pool: waits up to ``pool_timeout`` seconds for a free connection."""

    def __init__(self, config: PoolConfig) -> None:
        self._rp_setup(config)
        kwargs = dict(config.kwargs)
        kwargs["connection_class"] = instrumented_connection_class(kwargs["connection_class"])
        super().__init__(
            max_connections=config.max_connections,
            timeout=config.pool_timeout,
            queue_class=_CountingLifoQueue,
            **kwargs,
        )

    def reset(self) -> None:
        super().reset()
        self.pool.counters = self.counters


def build_pool(config: PoolConfig) -> RedisPool | BlockingRedisPool:
    """The pool for one alias. Constructs objects only: no network."""
    if config.pool_timeout is None:
        return RedisPool(config)
    return BlockingRedisPool(config)
