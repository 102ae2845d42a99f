"""Sentinel aliases, sync and asyncio, around one policy.

One pool for the master and one for the replicas, each with its own ``max_connections``:
our instrumented pools composed with redis-py's ``SentinelConnectionPool`` (sync) or
redis.asyncio's (async). redis-py asks the sentinels for the master on every new connection
and drops connections to a master that was demoted, so a failover needs no restart.
Building touches no network.

Shared by both sides: the master check (``MasterCheck``: when to ask, how long to back off),
the pool classes' mixin, what a master or replica pool adds to the alias's keywords, the
sentinels' keywords, and closing the sentinels. The sync and async classes are the shells
that differ only where one side awaits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from time import monotonic
from types import ModuleType
from typing import Any

import redis
import redis.asyncio
from redis import sentinel as sync_sentinel
from redis.asyncio import sentinel as async_sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import SSL
from redis_pool.pools.asyncio import AsyncBlockingRedisPool, AsyncRedisPool, async_kwargs
from redis_pool.pools.connections import instrumented_async_connection_class
from redis_pool.pools.retry import async_retry
from redis_pool.pools.sync import BlockingRedisPool, RedisPool
from redis_pool.stats.counters import PoolStats

AnyPool = RedisPool | BlockingRedisPool
AnyAsyncPool = AsyncRedisPool | AsyncBlockingRedisPool


# -- the policy -------------------------------------------------------------------------


# How often a master pool asks the sentinels who the master is, and how long it waits
# after the sentinels could not be asked.
MASTER_CHECK_INTERVAL = 1.0
MASTER_CHECK_BACKOFF = 30.0


class MasterCheck:
    """When a master pool asks the sentinels who the master is.

    redis-py asks only when it opens a connection. Pooled connections to a demoted master
    keep working until Sentinel turns that server into a replica, about 8 s after the switch
    (SENTINEL_PUBLISH_PERIOD * 4 in sentinel.c); the writes they take meanwhile are lost at
    the resync (measured: all of them, see docs on Sentinel). So a master pool asks at most
    once per MASTER_CHECK_INTERVAL, on a checkout, and redis-py drops the connections to the
    old address when it changed. One thread or task asks; the others go on with the
    connections they have.
    """

    __slots__ = ("_busy", "_next")

    def __init__(self) -> None:
        self._next = 0.0
        # A lock, not a flag, so that two threads cannot both claim; on one event loop a
        # non-blocking acquire is a flag test that cannot block.
        self._busy = threading.Lock()

    def claim(self) -> bool:
        """Whether the caller should ask now (then it must ask inside ``asking()``)."""
        if monotonic() < self._next or not self._busy.acquire(blocking=False):
            return False
        self._next = monotonic() + MASTER_CHECK_INTERVAL
        return True

    @contextmanager
    def asking(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError):
            # No sentinel answered: keep the connections we have (the master may be fine),
            # and do not make a request pay for asking again too soon.
            self._next = monotonic() + MASTER_CHECK_BACKOFF
        finally:
            self._busy.release()


class _MasterCheckMixin:
    """What our Sentinel pools, sync and async, add to redis-py's: a ``MasterCheck``."""

    is_master: bool
    _rp_master_check: MasterCheck

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rp_master_check = MasterCheck()
        super().__init__(*args, **kwargs)


def _role(config: PoolConfig, manager: Any, *, master: bool) -> tuple[PoolConfig, dict[str, Any]]:
    """A master or replica pool's config (its address), and the keywords that reach
    redis-py's ``SentinelConnectionPool.__init__`` through our pools'."""
    address = config.address if master else f"{config.address} replicas"
    role = {
        "service_name": config.discovery.service_name,
        "sentinel_manager": manager,
        "is_master": master,
    }
    return replace(config, address=address), role


def _managed(side: ModuleType, config: PoolConfig) -> Any:
    """redis-py's Sentinel connection class for the alias's transport, from ``side``:
    ``redis.sentinel`` or ``redis.asyncio.sentinel``."""
    ssl = config.transport == SSL
    return side.SentinelManagedSSLConnection if ssl else side.SentinelManagedConnection


def _sentinel_kwargs(config: PoolConfig, *, for_async: bool) -> dict[str, Any]:
    """The keywords of the sentinels' clients (``config.discovery.sentinel_kwargs``)."""
    sentinel_kwargs = dict(config.discovery.sentinel_kwargs)
    if for_async:
        sentinel_kwargs["retry"] = async_retry(sentinel_kwargs.get("retry"))
    return sentinel_kwargs


def _raise_first(outcomes: Iterable[object]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


# -- sync -------------------------------------------------------------------------------


class _SentinelPoolMixin(_MasterCheckMixin):
    proxy: Any

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        # redis-py's BlockingConnectionPool.reset() does not call super(), so the
        # Sentinel pool's own reset (forget the cached master) would be skipped.
        proxy = getattr(self, "proxy", None)
        if proxy is not None:
            proxy.reset()
        # Also after a fork: a thread of the parent may have held the lock.
        self._rp_master_check = MasterCheck()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        check = self._rp_master_check
        if self.is_master and check.claim():
            with check.asking():
                # Disconnects the idle connections if the address changed; in-use ones are
                # dropped when they come back (SentinelConnectionPool.owns_connection).
                self.proxy.get_master_address()
        return super().get_connection(*args, **kwargs)  # type: ignore[misc]


class SentinelRedisPool(_SentinelPoolMixin, RedisPool, sync_sentinel.SentinelConnectionPool):
    """Plain pool whose connections go to the master (or a replica) the sentinels name."""


class SentinelBlockingRedisPool(
    _SentinelPoolMixin, BlockingRedisPool, sync_sentinel.SentinelConnectionPool
):
    """Blocking pool whose connections go to the master (or a replica) the sentinels name."""


def _sentinel_pool(config: PoolConfig, manager: sync_sentinel.Sentinel, *, master: bool) -> AnyPool:
    pool_config, role = _role(config, manager, master=master)
    kwargs = {**config.kwargs, "connection_class": _managed(sync_sentinel, config), **role}
    plain = config.pool_timeout is None
    pool_class = SentinelRedisPool if plain else SentinelBlockingRedisPool
    return pool_class(replace(pool_config, kwargs=kwargs))


class SentinelTopology:
    """A Sentinel alias: the master's client and pool, the replicas', and the sentinels."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.sentinel = sync_sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(config.discovery.sentinels),
            sentinel_kwargs=_sentinel_kwargs(config, for_async=False),
        )
        self.pool: AnyPool = _sentinel_pool(config, self.sentinel, master=True)
        self.replica_pool = _sentinel_pool(config, self.sentinel, master=False)
        self._master = redis.Redis(connection_pool=self.pool)
        self._replica = redis.Redis(connection_pool=self.replica_pool)

    def client(self) -> redis.Redis:
        return self._master

    def peek(self) -> redis.Redis:
        return self._master

    def replica(self) -> redis.Redis:
        """Reads from a replica, round robin; the master when no replica is up."""
        return self._replica

    def pools(self) -> list[AnyPool]:
        return [self.pool, self.replica_pool]

    def close(self) -> None:
        for pool in self.pools():
            pool.disconnect()
        close_sentinels(self.sentinel)


def _outcome(close: Callable[[], object]) -> Exception | None:
    try:
        close()
    except Exception as error:  # raised by _raise_first, after the others are closed
        return error
    return None


def close_sentinels(manager: sync_sentinel.Sentinel) -> None:
    """Close the sentinel clients of ``manager`` and their pools.

    ``Sentinel.close()`` is new in redis-py 8; on 7.x we close its clients ourselves, the
    same way: all of them, then raise the first error.
    """
    close = getattr(manager, "close", None)
    if close is not None:
        close()
        return
    _raise_first([_outcome(client.close) for client in manager.sentinels])


# -- asyncio ----------------------------------------------------------------------------


class _AsyncSentinelPoolMixin(_MasterCheckMixin):
    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        check = self._rp_master_check
        if self.is_master and check.claim():
            with check.asking():
                await self.get_master_address()  # type: ignore[attr-defined]
        return await super().get_connection(*args, **kwargs)  # type: ignore[misc]


class AsyncSentinelRedisPool(
    _AsyncSentinelPoolMixin, AsyncRedisPool, async_sentinel.SentinelConnectionPool
):
    """Plain asyncio pool to the master (or a replica) the sentinels name."""


class AsyncSentinelBlockingRedisPool(
    _AsyncSentinelPoolMixin, AsyncBlockingRedisPool, async_sentinel.SentinelConnectionPool
):
    """Blocking asyncio pool to the master (or a replica) the sentinels name."""


def _async_sentinel_pool(
    config: PoolConfig, manager: async_sentinel.Sentinel, *, master: bool
) -> AnyAsyncPool:
    pool_config, role = _role(config, manager, master=master)
    managed = _managed(async_sentinel, config)
    kwargs = {
        **async_kwargs(config),
        "connection_class": instrumented_async_connection_class(managed),
        **role,
    }
    plain = config.pool_timeout is None
    pool_class = AsyncSentinelRedisPool if plain else AsyncSentinelBlockingRedisPool
    return pool_class(pool_config, kwargs)


@dataclass
class AsyncSentinelEntry:
    """A Sentinel alias on one event loop: master and replica clients and pools."""

    config: PoolConfig
    client: redis.asyncio.Redis
    replica: redis.asyncio.Redis
    pools: list[AnyAsyncPool]
    sentinel: async_sentinel.Sentinel

    def retire(self) -> None:
        for pool in self.pools:
            pool.retired = True

    def connected(self) -> bool:
        return any(connection.is_connected for connection in self.connections())

    async def aclose(self, *, in_use: bool = True) -> None:
        for pool in self.pools:
            await pool.disconnect(inuse_connections=in_use)
        await aclose_sentinels(self.sentinel)

    def stats(self) -> list[PoolStats]:
        return [pool.stats() for pool in self.pools]

    def connections(self) -> list[Any]:
        found: list[Any] = []
        for pool in [*self.pools, *(s.connection_pool for s in self.sentinel.sentinels)]:
            found += [*pool._available_connections, *pool._in_use_connections]
        return found


async def aclose_sentinels(manager: async_sentinel.Sentinel) -> None:
    """The async ``close_sentinels``: ``Sentinel.aclose()`` on redis-py 8, else each client
    closed, all of them, then the first error raised."""
    aclose = getattr(manager, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    _raise_first(
        await asyncio.gather(
            *(client.aclose() for client in manager.sentinels), return_exceptions=True
        )
    )


def build_sentinel(config: PoolConfig) -> AsyncSentinelEntry:
    """A Sentinel alias's async clients for the running loop. Constructs objects only."""
    sentinel = async_sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(config.discovery.sentinels), sentinel_kwargs=_sentinel_kwargs(config, for_async=True)
    )
    master = _async_sentinel_pool(config, sentinel, master=True)
    replicas = _async_sentinel_pool(config, sentinel, master=False)
    return AsyncSentinelEntry(
        config=config,
        client=redis.asyncio.Redis(connection_pool=master),
        replica=redis.asyncio.Redis(connection_pool=replicas),
        pools=[master, replicas],
        sentinel=sentinel,
    )
