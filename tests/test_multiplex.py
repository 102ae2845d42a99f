"""``MultiplexedRedis``: same results as ``redis.asyncio.Redis``, one shared connection, and
the commands that cannot share one kept off it. Against a real redis-server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio
from redis.exceptions import DataError, ResponseError, WatchError

from redis_pool.multiplex import MultiplexedRedis, MultiplexStats, route
from tests.redis_server import RedisServer

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def make_pool(server: RedisServer, max_connections: int = 8, **kwargs: Any) -> Any:
    return redis.asyncio.BlockingConnectionPool.from_url(
        server.url, max_connections=max_connections, timeout=5, **kwargs
    )


async def close(*clients: redis.asyncio.Redis) -> None:
    for client in clients:
        await client.aclose()
        await client.connection_pool.disconnect()


async def same_results(client: redis.asyncio.Redis) -> list[Any]:
    """A spread of commands whose replies go through different callbacks."""
    results: list[Any] = [
        await client.set("s", "v"),
        await client.get("s"),
        await client.get("missing"),
        await client.incr("n"),
        await client.incrbyfloat("f", 1.5),
        await client.hset("h", mapping={"a": 1, "b": "x"}),
        await client.hgetall("h"),
        await client.rpush("l", 1, 2, 3),
        await client.lrange("l", 0, -1),
        await client.zadd("z", {"m1": 1.5, "m2": 2}),
        await client.zrange("z", 0, -1, withscores=True),
        await client.sadd("set", "a", "b"),
        await client.smembers("set"),
        await client.mget("s", "missing"),
        await client.mget([]),  # EMPTY_RESPONSE: the server's error becomes []
        await client.exists("s", "n"),
        await client.expire("s", 100),
        await client.ttl("s"),
        await client.type("h"),
        await client.xadd("st", {"k": "v"}, id="1-0"),
        await client.xrange("st"),
        await client.config_get("maxmemory"),
        await client.info("server") is not None,
        await client.ping(),
        await client.echo("hi"),
        await client.dump("s") is not None,  # NEVER_DECODE
        await client.eval("return {1, 'two', redis.call('GET', KEYS[1])}", 1, "s"),
    ]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await client.lpush("s", 1)
    with pytest.raises(DataError):
        await client.set("k", {"not": "encodable"})  # type: ignore[arg-type]
    return results


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("decode", [False, True])
def test_same_results_as_redis_asyncio(
    redis_server: RedisServer, protocol: int, decode: bool
) -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        kwargs = {"protocol": protocol, "decode_responses": decode}
        plain = redis.asyncio.Redis(connection_pool=make_pool(redis_server, **kwargs))
        expected = await same_results(plain)
        await plain.flushall()
        mux = MultiplexedRedis(make_pool(redis_server, **kwargs))
        got = await same_results(mux)
        assert mux.stats().connects == 1
        await close(plain, mux)
        return expected, got

    expected, got = run(main)
    assert got == expected


def test_python_parser_too(redis_server: RedisServer) -> None:
    from redis._parsers import _AsyncRESP3Parser

    async def main() -> list[Any]:
        mux = MultiplexedRedis(make_pool(redis_server, parser_class=_AsyncRESP3Parser))
        results = await same_results(mux)
        assert isinstance(mux.multiplexed._packer._parser, _AsyncRESP3Parser)
        await close(mux)
        return results

    assert run(main)[1] == b"v"


def test_concurrent_tasks_share_one_connection_and_batch(redis_server: RedisServer) -> None:
    async def main() -> MultiplexStats:
        mux = MultiplexedRedis(make_pool(redis_server, client_name="mux-share-test"))

        async def worker(i: int) -> None:
            for j in range(50):
                await mux.set(f"k{i}", f"{i}:{j}")
                assert await mux.get(f"k{i}") == f"{i}:{j}".encode()

        await asyncio.gather(*(worker(i) for i in range(64)))
        stats = mux.stats()
        assert len(redis_server.clients_named("mux-share-test")) == 1
        await close(mux)
        return stats

    stats = run(main)
    assert stats.commands == 64 * 50 * 2
    assert stats.connections == 1
    assert stats.connects == 1
    assert stats.mean_batch > 8  # 64 tasks' commands go out together
    assert stats.in_flight == stats.queued == stats.waiting == 0
    assert stats.dedicated_in_use == 0
    assert stats.dedicated_max == 8
    assert set(stats.as_dict()) >= {"connections", "in_flight", "batches", "mean_batch"}


def test_pipeline_goes_multiplexed_in_chunks_with_redis_py_results(
    redis_server: RedisServer,
) -> None:
    def fill(pipe: Any) -> None:
        for i in range(300):
            pipe.set(f"p{i}", i)
            pipe.incr(f"p{i}")
        pipe.lpush("p1", 1)  # WRONGTYPE, kept in place
        pipe.mget([f"p{i}" for i in range(5)])
        pipe.hgetall("nothing")

    async def main() -> tuple[list[Any], list[Any], MultiplexStats]:
        plain = redis.asyncio.Redis(connection_pool=make_pool(redis_server))
        pipe = plain.pipeline(transaction=False)
        fill(pipe)
        expected = await pipe.execute(raise_on_error=False)
        await plain.flushall()
        mux = MultiplexedRedis(make_pool(redis_server), max_in_flight=128, pipeline_chunk=64)
        pipe = mux.pipeline(transaction=False)
        fill(pipe)
        got = await pipe.execute(raise_on_error=False)
        pipe = mux.pipeline(transaction=False)
        fill(pipe)
        with pytest.raises(ResponseError, match="Command # 601"):
            await pipe.execute()
        stats = mux.stats()
        await close(plain, mux)
        return expected, got, stats

    expected, got, stats = run(main)
    assert [type(x) for x in got] == [type(x) for x in expected]
    assert [x for x in got if not isinstance(x, Exception)] == [
        x for x in expected if not isinstance(x, Exception)
    ]
    assert stats.dedicated_in_use == 0
    assert stats.connects == 1
    assert stats.max_batch <= 128  # chunks of 64 queue for the 128 slots


def test_pipeline_with_scripts(redis_server: RedisServer) -> None:
    async def main() -> list[Any]:
        mux = MultiplexedRedis(make_pool(redis_server))
        script = mux.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        await mux.script_flush()
        pipe = mux.pipeline(transaction=False)
        await script(keys=["c"], args=[2], client=pipe)
        await script(keys=["c"], args=[3], client=pipe)
        result = await pipe.execute()
        await close(mux)
        return result

    assert run(main) == [2, 5]


def test_blpop_does_not_hold_other_tasks(redis_server: RedisServer) -> None:
    async def main() -> tuple[float, Any]:
        mux = MultiplexedRedis(make_pool(redis_server))
        await mux.ping()
        loop = asyncio.get_running_loop()
        blocked = asyncio.create_task(mux.blpop(["queue"], timeout=5))
        await asyncio.sleep(0.05)
        start = loop.time()
        for i in range(20):
            await mux.set(f"x{i}", i)
        took = loop.time() - start
        assert mux.stats().dedicated_in_use == 1
        await mux.rpush("queue", "item")  # shared connection wakes the dedicated one
        result = await asyncio.wait_for(blocked, 2)
        await close(mux)
        return took, result

    took, result = run(main)
    assert took < 2.5  # not held for BLPOP's 5 s
    assert result == (b"queue", b"item") or result == [b"queue", b"item"]


def test_xread_block_is_dedicated_and_plain_xread_shared() -> None:
    assert route(("XREAD", "COUNT", 1, "BLOCK", 100, "STREAMS", "s", "$")) == "dedicated"
    assert route(("XREAD", "STREAMS", "block", "0")) == "shared"
    assert route(("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")) == (
        "dedicated"
    )
    assert route(("CLIENT SETNAME", "x")) == "isolated"
    assert route(("CLIENT", "TRACKING", "ON")) == "isolated"
    assert route(("CLIENT", "ID")) == "shared"
    assert route((b"select", 1)) == "isolated"
    for name in ("BLPOP", "BZMPOP", "WAIT", "WAITAOF", "MULTI", "WATCH", "MONITOR"):
        assert route((name,)) == "dedicated"
    assert route(("GET", "k")) == "shared"


def test_xread_block_does_not_hold_others(redis_server: RedisServer) -> None:
    async def main() -> float:
        mux = MultiplexedRedis(make_pool(redis_server))
        reader = asyncio.create_task(mux.xread({"stream": "$"}, block=5000))
        await asyncio.sleep(0.05)
        start = asyncio.get_running_loop().time()
        await mux.set("a", 1)
        took = asyncio.get_running_loop().time() - start
        await mux.xadd("stream", {"k": "v"})
        assert await asyncio.wait_for(reader, 5)
        await close(mux)
        return took

    assert run(main) < 2.5  # not held for the 5 s BLOCK


def test_multi_is_not_polluted_by_another_tasks_command(redis_server: RedisServer) -> None:
    async def main() -> tuple[list[Any], Any]:
        mux = MultiplexedRedis(make_pool(redis_server))
        pipe = mux.pipeline(transaction=True)
        pipe.set("t", "1")
        pipe.get("t")

        async def meanwhile() -> None:
            for _ in range(50):
                await mux.set("other", "x")
                await asyncio.sleep(0)

        other = asyncio.create_task(meanwhile())
        result = await pipe.execute()
        await other
        # Explicit MULTI on a non-transactional pipeline also leaves the shared connection.
        pipe2 = mux.pipeline(transaction=False)
        pipe2.multi()
        pipe2.incr("m")
        pipe2.incr("m")
        result2 = await pipe2.execute()
        await close(mux)
        return result, result2

    result, result2 = run(main)
    assert result == [True, b"1"]  # exactly our two replies: no foreign SET inside
    assert result2 == [1, 2]


def test_watch_prevents_lost_update(redis_server: RedisServer) -> None:
    async def main() -> tuple[Any, int, int]:
        mux = MultiplexedRedis(make_pool(redis_server))
        await mux.set("counter", 0)
        attempts = 0

        async def increment(pipe: Any) -> None:
            nonlocal attempts
            attempts += 1
            value = int(await pipe.get("counter"))
            if attempts == 1:
                await mux.set("counter", 100)  # another writer, through the shared connection
            pipe.multi()
            pipe.set("counter", value + 1)

        result = await mux.transaction(increment, "counter")
        # The manual way: WATCH on a non-transactional pipeline.
        async with mux.pipeline(transaction=False) as pipe:
            await pipe.watch("counter")
            await mux.set("counter", 5)
            pipe.multi()
            pipe.set("counter", 6)
            with pytest.raises(WatchError):
                await pipe.execute()
        final = int(await mux.get("counter"))
        await close(mux)
        return result, attempts, final

    result, attempts, final = run(main)
    assert result == [True]
    assert attempts == 2
    assert final == 5


def test_select_does_not_switch_others_db(redis_server: RedisServer) -> None:
    async def main() -> tuple[Any, Any, Any]:
        mux = MultiplexedRedis(make_pool(redis_server, max_connections=1))
        await mux.set("where", "db0")
        assert await mux.select(1) is True
        after = await mux.get("where")
        # The one dedicated connection (max_connections=1) must not stay on db 1 either.
        blpop = await mux.blpop(["where-list"], timeout=0.01)
        await mux.rpush("where-list", "db0")
        blpop = await mux.blpop(["where-list"], timeout=0.5)
        await mux.client_setname("renamed")
        name = await mux.client_getname()
        await close(mux)
        return after, blpop, name

    after, blpop, name = run(main)
    assert after == b"db0"
    assert blpop is not None
    assert name != b"renamed"
    assert name != "renamed"


def test_pubsub_and_monitor_use_dedicated_connections(redis_server: RedisServer) -> None:
    async def main() -> Any:
        mux = MultiplexedRedis(make_pool(redis_server))
        pubsub = mux.pubsub()
        await pubsub.subscribe("chan")
        assert await pubsub.get_message(timeout=1)
        assert await mux.publish("chan", "hello") == 1
        message = await pubsub.get_message(timeout=1)
        assert mux.stats().dedicated_in_use == 1
        await pubsub.aclose()
        async with mux.monitor() as monitor:
            await mux.set("monitored", 1)
            seen = await asyncio.wait_for(monitor.next_command(), 2)
        single = mux.client()
        async with single:
            await single.select(2)
            assert await single.get("monitored") is None  # its own session, db 2
        await close(mux)
        return message, seen

    message, seen = run(main)
    assert message["data"] == b"hello"
    assert "monitored" in seen["command"]


def test_backpressure_bounds_in_flight_fifo(redis_server: RedisServer) -> None:
    async def main() -> tuple[list[int], int]:
        mux = MultiplexedRedis(make_pool(redis_server), max_in_flight=4)
        order: list[int] = []
        peak = 0

        async def one(i: int) -> None:
            nonlocal peak
            await mux.rpush("order", i)
            order.append(i)
            stats = mux.stats()
            peak = max(peak, stats.in_flight + stats.queued)

        tasks = [asyncio.create_task(one(i)) for i in range(100)]
        await asyncio.sleep(0)
        assert mux.stats().waiting == 96
        await asyncio.gather(*tasks)
        server_order = [int(x) for x in await mux.lrange("order", 0, -1)]
        await close(mux)
        assert server_order == list(range(100))  # FIFO: arrival order kept
        return order, peak

    order, peak = run(main)
    assert order == list(range(100))
    assert peak <= 4


def test_probe_is_served_during_a_huge_pipeline(redis_server: RedisServer) -> None:
    """Fairness: a probe's command does not wait for a 20,000-command pipeline to end."""

    async def main() -> tuple[bool, int]:
        mux = MultiplexedRedis(make_pool(redis_server), max_in_flight=256, pipeline_chunk=64)
        pipe = mux.pipeline(transaction=False)
        for _i in range(20_000):
            pipe.incr("burst")
        burst = asyncio.create_task(pipe.execute())
        await asyncio.sleep(0)  # the burst is queued and started
        probe = await mux.get("burst")
        done_first = not burst.done()
        await burst
        await close(mux)
        return done_first, int(probe or 0)

    done_first, seen = run(main)
    assert done_first
    assert seen < 20_000  # the probe ran in the middle of the burst


def test_another_loop_is_refused(redis_server: RedisServer) -> None:
    pool = make_pool(redis_server)
    mux = MultiplexedRedis(pool)

    async def use() -> Any:
        return await mux.ping()

    async def closing() -> None:
        await mux.aclose()

    loop_a = asyncio.new_event_loop()
    loop_b = asyncio.new_event_loop()
    try:
        assert loop_a.run_until_complete(use()) is True
        with pytest.raises(RuntimeError, match="another event loop"):
            loop_b.run_until_complete(use())
        loop_a.run_until_complete(closing())
    finally:
        loop_a.close()
        loop_b.close()
    # Its loop closed: the client may start afresh on a new one.

    async def use_and_close() -> Any:
        try:
            return await use()
        finally:
            await closing()

    assert run(use_and_close) is True


def test_with_the_alias_async_pool(redis_server: RedisServer) -> None:
    """The constructor the registry will use: the alias's own async pool."""
    from redis_pool import aget_redis

    async def main() -> tuple[MultiplexStats, Any]:
        pool = aget_redis().connection_pool
        mux = MultiplexedRedis(pool)
        await asyncio.gather(*(mux.incr("aliased") for _ in range(100)))
        stats = mux.stats()
        name = await mux.client_getname()  # asked on the shared connection itself
        await mux.aclose()
        return stats, name

    stats, name = run(main)
    assert stats.alias == "default"
    assert stats.address
    assert stats.commands == 100
    assert stats.connections == 1
    name = name.decode() if isinstance(name, bytes) else name
    assert name.startswith("redis_pool:")
    assert ":default:" in name
    assert name.endswith(str(os.getpid()))


def test_a_cancelled_pipeline_leaves_the_connection_in_sync(redis_server: RedisServer) -> None:
    async def main() -> tuple[int, Any, MultiplexStats]:
        mux = MultiplexedRedis(make_pool(redis_server), max_in_flight=64, pipeline_chunk=16)
        pipe = mux.pipeline(transaction=False)
        for i in range(5000):
            pipe.echo(f"pipe-{i}")
        running = asyncio.create_task(pipe.execute())
        while mux.stats().commands < 200:  # some chunks written, most not
            await asyncio.sleep(0.001)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        echoes = [await mux.echo(f"after-{i}") for i in range(10)]
        assert echoes == [f"after-{i}".encode() for i in range(10)]
        stats = mux.stats()
        repr_ = repr(mux)
        await close(mux)
        return stats.commands, repr_, stats

    written, repr_, stats = run(main)
    assert 200 <= written < 5000 + 10  # the unwritten chunks were never sent
    assert stats.in_flight == 0
    assert stats.connects == 1
    assert "MultiplexedRedis" in repr_


def test_bad_arguments() -> None:
    pool = redis.asyncio.ConnectionPool(host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="max_in_flight must be at least 1"):
        MultiplexedRedis(pool, max_in_flight=0)


def test_aclose_while_connecting_fails_the_queue() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tests.redis_server import free_port

    async def main() -> list[Any]:
        # A listening socket that never answers the handshake: connecting hangs.
        accepted: list[asyncio.StreamWriter] = []

        def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", free_port())
        port = server.sockets[0].getsockname()[1]
        pool = redis.asyncio.ConnectionPool(host="127.0.0.1", port=port, socket_timeout=10)
        mux = MultiplexedRedis(pool)
        calls = [asyncio.create_task(mux.get("x")) for _ in range(3)]
        await asyncio.sleep(0.1)
        await mux.multiplexed.aclose()
        results = await asyncio.gather(*calls, return_exceptions=True)
        await pool.disconnect()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        return results

    results = run(main)
    assert all(isinstance(r, RedisConnectionError) for r in results), results


@pytest.mark.parametrize("parser", ["hiredis", "python"])
def test_resp3_push_messages_between_replies(redis_server: RedisServer, parser: str) -> None:
    """Invalidation pushes redirected to the shared connection arrive between its replies;
    redis-py's parser consumes them and every caller still gets its own reply."""
    from redis._parsers import _AsyncRESP3Parser

    async def main() -> tuple[int, int]:
        extra: dict[str, Any] = {"protocol": 3}
        if parser == "python":
            extra["parser_class"] = _AsyncRESP3Parser
        mux = MultiplexedRedis(make_pool(redis_server, **extra))
        shared_id = await mux.client_id()
        conn_parser = mux.multiplexed.connection._parser
        pushes: list[Any] = []
        seen = conn_parser.handle_push_response

        async def counting(response: Any, **kwargs: Any) -> Any:
            pushes.append(response)
            return await seen(response, **kwargs)

        conn_parser.handle_push_response = counting
        tracker = redis.asyncio.Redis.from_url(
            redis_server.url, protocol=3, single_connection_client=True
        )
        await tracker.client_tracking_on(clientid=shared_id, bcast=True)
        wrong = 0

        async def one(i: int) -> None:
            nonlocal wrong
            for round_ in range(5):  # each batch's writes trigger pushes before its reads
                await mux.set(f"t{i}", f"{round_}:{i}")
                wrong += await mux.get(f"t{i}") != f"{round_}:{i}".encode()

        await asyncio.gather(*(one(i) for i in range(50)))
        await tracker.aclose()
        await close(mux)
        return wrong, len(pushes)

    wrong, pushes = run(main)
    assert wrong == 0
    assert pushes >= 5  # the pushes really came through the shared connection


def test_lock_and_scripts_through_the_shared_connection(redis_server: RedisServer) -> None:
    async def main() -> tuple[bool, Any, Any, MultiplexStats]:
        mux = MultiplexedRedis(make_pool(redis_server))
        async with mux.lock("the-lock", timeout=5) as lock:
            owned = await lock.owned()
            await lock.extend(2)
        after = await mux.get("the-lock")
        echo = await mux.register_script("return ARGV[1]")(args=["x"])
        stats = mux.stats()
        await close(mux)
        return owned, after, echo, stats

    owned, after, echo, stats = run(main)
    assert owned is True
    assert after is None
    assert echo == b"x"
    assert stats.dedicated_in_use == 0
