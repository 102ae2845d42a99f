"""The sync pools: plain (fails at once when full) and blocking (waits its turn, fairly)."""

from __future__ import annotations

import os
from collections.abc import Callable
from time import perf_counter
from typing import Any

from redis.connection import (
    BlockingConnectionPool,
    ConnectionPool,
)

from redis_pool.config.alias import PoolConfig
from redis_pool.exceptions import PoolExhaustedError
from redis_pool.pools.base import InstrumentedPoolMixin
from redis_pool.pools.counting import (
    CountingFairLifoQueue,
    CountingSet,
    LeakTrackingFairLifoQueue,
    LeakTrackingSet,
)
from redis_pool.pools.retire import retire_class
from redis_pool.stats.leaks import capture


class RedisPool(InstrumentedPoolMixin, ConnectionPool):
    """Plain pool: fails at once when all ``max_connections`` are in use."""

    _lock: Any
    _in_use_connections: Any
    _created_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # RedisPool(config), or redis-py's ConnectionPool(connection_class, max_connections,
        # **connection_kwargs): see _rp_init_args.
        super().__init__(**self._rp_init_args(args, kwargs))

    def reset(self) -> None:
        # Under the pool's lock: redis-py publishes the new pid at the end of reset(), and
        # another thread of a forked child must not reach the in-use set before it counts.
        with self._lock:
            super().reset()
            counting = LeakTrackingSet if self.counters.capture_stacks else CountingSet
            in_use = counting()
            in_use.counters = self.counters
            self._in_use_connections = in_use

    def _rp_in_use(self) -> int:
        return len(self._in_use_connections)

    def _rp_made(self) -> int:
        return self._created_connections

    def make_connection(self) -> Any:
        # Runs under the pool's lock, before redis-py raises its own MaxConnectionsError.
        if self._created_connections >= self.max_connections:
            self.counters.exhausted += 1
            raise PoolExhaustedError(self.alias, self.max_connections, None)
        return super().make_connection()

    def in_use_connections(self) -> list[Any]:
        if self.pid != os.getpid():
            return []
        with self._lock:
            return list(self._in_use_connections)

    def _rp_retire(self) -> None:
        with self._lock:
            in_use = self._in_use_connections
            in_use.__class__ = retire_class(type(in_use))
            for connection in self._available_connections:
                connection.disconnect()


class BlockingRedisPool(InstrumentedPoolMixin, BlockingConnectionPool):
    """Blocking pool: waits up to ``pool_timeout`` seconds for a free connection."""

    pool: CountingFairLifoQueue
    _connections: list[Any]
    timeout: float | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # BlockingRedisPool(config), or redis-py's BlockingConnectionPool(max_connections,
        # timeout, connection_class, queue_class, **connection_kwargs).
        names = ("max_connections", "timeout", "connection_class", "queue_class")
        if args and not isinstance(args[0], PoolConfig):
            kwargs = dict(kwargs, **dict(zip(names, args, strict=False)))
            args = ()
        kwargs = self._rp_init_args(args, kwargs)
        # The queue is ours: it counts, and hands connections to waiters fairly.
        make_queue: Callable[[int], CountingFairLifoQueue] = self._rp_queue
        kwargs["queue_class"] = make_queue
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def release(self, connection: Any) -> None:
        # redis-py's blocking pool would queue a connection of another pool (it checks
        # only the pid) and then hand it out; its plain pool ignores one. Ignore it.
        if getattr(connection, "_rp_counters", None) is not self.counters:
            return
        super().release(connection)  # type: ignore[no-untyped-call]

    def _rp_queue(self, maxsize: int) -> CountingFairLifoQueue:
        # redis-py builds the queue in reset(), after our reset() made this process's
        # counters: the queue counts from its first get.
        counting = (
            LeakTrackingFairLifoQueue if self.counters.capture_stacks else CountingFairLifoQueue
        )
        return counting(maxsize, self)

    def _rp_in_use(self) -> int:
        queue = self.pool
        return queue.maxsize - len(queue.queue)

    def _rp_made(self) -> int:
        return len(self._connections)

    def make_connection(self) -> Any:
        connection = super().make_connection()
        # Made for a checkout the queue already counted (it handed out a placeholder).
        connection._rp_out = perf_counter()
        if self.counters.capture_stacks:
            connection._rp_stack = capture()
        return connection

    def in_use_connections(self) -> list[Any]:
        if self.pid != os.getpid():
            return []
        queue = self.pool
        with queue.mutex:
            idle = {id(c) for c in queue.queue if c is not None}
            connections = list(self._connections)
        return [c for c in connections if id(c) not in idle]

    def _rp_retire(self) -> None:
        queue = self.pool
        with queue.mutex:
            queue.__class__ = retire_class(type(queue))
            for connection in queue.queue:
                if connection is not None:
                    connection.disconnect()


def build_pool(config: PoolConfig) -> RedisPool | BlockingRedisPool:
    """The pool for one alias. Constructs objects only: no network."""
    if config.pool_timeout is None:
        return RedisPool(config)
    return BlockingRedisPool(config)
