"""Our pools keep their redis-py parents' promises (issue 9): built with redis-py's
arguments, a foreign connection returned is ignored, async connect errors keep their
cause, and the async ``get_connection(args)`` still warns. redis-py's own pool suite runs
against them too: ``python -m tests.redis_py_suite`` (scripts/test)."""

from __future__ import annotations

import asyncio
import warnings

import pytest
import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from redis_pool.pools.asyncio import AsyncBlockingRedisPool, AsyncRedisPool
from redis_pool.pools.sync import BlockingRedisPool, RedisPool
from tests.redis_server import LOOPBACK, RedisServer, free_port


@pytest.mark.parametrize("cls", [RedisPool, BlockingRedisPool])
def test_built_like_redis_py(cls: type[RedisPool], redis_server: RedisServer) -> None:
    for pool in (
        cls(host=LOOPBACK, port=redis_server.port, db=2),
        cls.from_url(f"redis://{LOOPBACK}:{redis_server.port}/2"),
    ):
        client = redis.Redis(connection_pool=pool)
        try:
            client.set("k", "v")
            assert client.get("k") == b"v"
            assert pool.connection_kwargs["db"] == 2
            stats = pool.stats()
            assert (stats.alias, stats.created, stats.in_use) == ("(direct)", 1, 0)
            assert stats.address == f"redis://{LOOPBACK}:{redis_server.port}/2"
        finally:
            pool.disconnect()


def test_blocking_pool_positional_arguments_as_redis_py() -> None:
    pool = BlockingRedisPool(3, 0.5)
    assert (pool.max_connections, pool.timeout) == (3, 0.5)


@pytest.mark.parametrize("cls", [AsyncRedisPool, AsyncBlockingRedisPool])
def test_async_built_like_redis_py(cls: type[AsyncRedisPool], redis_server: RedisServer) -> None:
    async def main() -> None:
        for pool in (
            cls(host=LOOPBACK, port=redis_server.port),
            cls.from_url(f"redis://{LOOPBACK}:{redis_server.port}/0"),
        ):
            client = redis.asyncio.Redis(connection_pool=pool)
            await client.set("k", "v")
            assert await client.get("k") == b"v"
            assert pool.stats().in_use == 0
            await pool.disconnect()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("cls", "options"),
    [(BlockingRedisPool, {}), (RedisPool, {}), (RedisPool, {"leak": True})],
)
def test_returning_a_connection_the_pool_does_not_own_is_ignored(
    cls: type[RedisPool], options: dict[str, bool], redis_server: RedisServer
) -> None:
    url = f"redis://{LOOPBACK}:{redis_server.port}/0"
    pool, other = cls.from_url(url, max_connections=1), redis.ConnectionPool.from_url(url)
    if options:
        pool.counters.leak_limit = 60.0  # leak detection on: the checkout stack is kept
        pool.counters.capture_stacks = True
        pool.reset()
    try:
        foreign = other.get_connection()
        pool.release(foreign)  # redis-py's plain pool ignores it; ours did AttributeError
        mine = pool.get_connection()
        assert mine is not foreign
        pool.release(mine)
        assert pool.stats().in_use == 0
        assert pool.get_connection() is mine  # the foreign one never entered the pool
    finally:
        other.disconnect()
        pool.disconnect()


def test_async_connect_error_keeps_its_cause() -> None:
    async def main() -> BaseException:
        pool = AsyncRedisPool(host=LOOPBACK, port=free_port(), socket_connect_timeout=1)
        with pytest.raises(RedisConnectionError) as caught:
            await pool.get_connection()
        await pool.disconnect()
        return caught.value

    error = asyncio.run(main())
    assert not error.__suppress_context__  # was: raised "from None"
    assert isinstance(error.__context__ or error.__cause__, OSError)


def test_async_get_connection_with_arguments_still_warns(redis_server: RedisServer) -> None:
    async def main() -> list[warnings.WarningMessage]:
        pool = AsyncRedisPool(host=LOOPBACK, port=redis_server.port)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            connection = await pool.get_connection("GET")
        await pool.release(connection)
        await pool.disconnect()
        return caught

    caught = asyncio.run(main())
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
