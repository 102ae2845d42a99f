"""``"multiplex": True``: the async registry hands out a ``MultiplexedRedis`` per alias and
loop, closes it with the loop, retires it on a settings change, and publishes its figures.
Real redis-server processes, real event loops, no mocks."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
import warnings
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import redis.asyncio
from django.core.management import call_command
from django.test import override_settings

from redis_pool import MultiplexedRedis, MultiplexStats, aget_redis, aget_replica, aio
from redis_pool.observability import monitor
from tests.redis_server import RedisServer


def ours(server: RedisServer) -> list[dict[str, str]]:
    """This process's connections of the alias on ``server`` (not the stats publisher's)."""
    return [c for c in server.clients_named("redis_pool:") if c["name"].endswith(f":{os.getpid()}")]


def settings_for(server: RedisServer, **extra: Any) -> dict[str, Any]:
    return {"default": {"url": server.url, "multiplex": True, "max_connections": 8, **extra}}


@pytest.fixture
def mux(fresh_server: RedisServer) -> Iterator[RedisServer]:
    """The default alias multiplexed, on a private server whose clients we can count."""
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        yield fresh_server


@pytest.fixture(autouse=True)
def _nothing_survives() -> Iterator[None]:
    monitor.stop()
    yield
    monitor.stop()
    assert aio.async_multiplex_stats() == []
    assert aio.async_pool_stats() == []


def test_aget_redis_returns_the_multiplexed_client(mux: RedisServer) -> None:
    async def main() -> tuple[Any, ...]:
        client = aget_redis()
        await client.set("k", "v")
        return client, aget_redis(), aget_replica(), await client.get("k")

    client, again, replica, value = asyncio.run(main())
    assert isinstance(client, MultiplexedRedis)
    assert again is client
    assert replica is client  # a standalone alias has no replicas
    assert value == b"v"
    assert client.multiplexed.limit.limit == 1024  # the default max_in_flight


def test_max_in_flight_setting_reaches_the_client(fresh_server: RedisServer) -> None:
    async def main() -> MultiplexedRedis:
        client = aget_redis()
        assert isinstance(client, MultiplexedRedis)
        await asyncio.gather(*(client.incr("n") for _ in range(50)))
        return client

    with override_settings(REDIS_POOL=settings_for(fresh_server, max_in_flight=3)):
        client = asyncio.run(main())
    assert client.multiplexed.limit.limit == 3
    assert client.multiplexed.max_batch <= 3
    assert fresh_server.command("GET", "n") == b"$2\r\n50\r\n"


def test_a_plain_alias_stays_plain(fresh_server: RedisServer) -> None:
    async def main() -> redis.asyncio.Redis:
        return aget_redis()

    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        client = asyncio.run(main())
    assert type(client) is redis.asyncio.Redis


def test_many_tasks_share_one_server_connection(mux: RedisServer) -> None:
    async def main() -> tuple[list[int], int, MultiplexStats]:
        client = aget_redis()
        values = await asyncio.gather(*(client.incr("counter") for _ in range(500)))
        return sorted(values), len(ours(mux)), client.stats()

    values, connections, stats = asyncio.run(main())
    assert values == list(range(1, 501))
    assert connections == 1  # CLIENT LIST: 500 concurrent tasks, one connection
    assert (stats.connections, stats.connects, stats.dedicated_in_use) == (1, 1, 0)
    assert stats.batches < stats.commands  # written together
    assert ours(mux) == []  # closed with the loop


def test_blpop_takes_a_dedicated_connection_and_blocks_no_one(mux: RedisServer) -> None:
    async def main() -> tuple[float, bool, int, int, Any]:
        client = aget_redis()
        await client.ping()
        blpop = asyncio.ensure_future(client.blpop(["queue"], timeout=2))
        await asyncio.sleep(0.1)  # the BLPOP is on the server, blocked
        start = time.monotonic()
        await asyncio.gather(*(client.get(f"k{i}") for i in range(100)))
        elapsed = time.monotonic() - start
        blocked = not blpop.done()
        in_use = client.stats().dedicated_in_use
        connections = len(ours(mux))
        await client.rpush("queue", "item")
        return elapsed, blocked, in_use, connections, await blpop

    elapsed, still_blocked, in_use, connections, popped = asyncio.run(main())
    assert still_blocked  # the others finished while the BLPOP waited
    assert elapsed < 1.0  # nowhere near the BLPOP's 2 s
    assert in_use == 1
    assert connections == 2  # the shared one and the BLPOP's dedicated one
    assert popped == (b"queue", b"item")


def test_a_settings_change_retires_it_after_its_commands_finish(fresh_server: RedisServer) -> None:
    async def main() -> tuple[Any, ...]:
        old = aget_redis()
        await old.ping()
        pending = [asyncio.ensure_future(old.incr("n")) for _ in range(200)]
        await asyncio.sleep(0)  # queued for the next write
        with override_settings(REDIS_POOL=settings_for(fresh_server, max_in_flight=64)):
            new = aget_redis()
            results = await asyncio.gather(*pending)
            for _ in range(200):  # the retired client's close runs on this loop
                if not old.multiplexed.connected:
                    break
                await asyncio.sleep(0.01)
            await new.incr("n")
            return old, new, sorted(results), old.multiplexed.connected, len(ours(fresh_server))

    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        old, new, results, old_connected, connections = asyncio.run(main())
    assert isinstance(new, MultiplexedRedis)
    assert new is not old
    assert new.multiplexed.limit.limit == 64
    assert results == list(range(1, 201))  # nothing in flight failed at the retirement
    assert not old_connected
    assert connections == 1  # only the new shared connection
    assert ours(fresh_server) == []


def test_loop_close_closes_it_without_resource_warnings(mux: RedisServer) -> None:
    async def main() -> int:
        client = aget_redis()
        await asyncio.gather(*(client.set(f"k{i}", i) for i in range(50)))
        await client.blpop(["nothing"], timeout=0.05)  # a dedicated connection too
        return len(ours(mux))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_while_running = asyncio.run(main())
        gc.collect()
    assert open_while_running == 2
    assert ours(mux) == []
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_loop_closed_with_close_alone_closes_it(mux: RedisServer) -> None:
    loop = asyncio.new_event_loop()

    async def main() -> MultiplexedRedis:
        client = aget_redis()
        await client.ping()
        return client  # type: ignore[return-value]

    client = loop.run_until_complete(main())
    assert len(ours(mux)) == 1
    loop.close()  # no asyncio.run(): the registry's wrapped close() does it
    assert not client.multiplexed.connected
    assert ours(mux) == []


def test_stats_are_published_and_shown_by_redis_poolstats(mux: RedisServer) -> None:
    def command(*args: str) -> dict[str, Any]:
        out = StringIO()
        call_command("redis_poolstats", *args, stdout=out)
        return json.loads(out.getvalue()) if "--json" in args else {"text": out.getvalue()}

    async def main() -> tuple[dict[str, Any], ...]:
        client = aget_redis()
        await asyncio.gather(*(client.incr("n") for _ in range(64)))
        # Only the shared connection was used: the alias's pools created nothing, and the
        # alias is published all the same.
        await asyncio.to_thread(monitor.publish_now)
        fleet = await asyncio.to_thread(command, "--json")
        table = await asyncio.to_thread(command)
        local = await asyncio.to_thread(command, "--json", "--local")
        return fleet, table, local

    fleet, table, local = asyncio.run(main())
    [alias] = fleet["aliases"]
    [process] = alias["processes"]
    [published] = process["async_multiplex"]
    assert published["alias"] == "default"
    assert published["address"] == alias["address"]
    assert (published["connections"], published["in_flight"]) == (1, 0)
    assert published["commands"] == 64
    assert published["batches"] >= 1
    assert published["mean_batch"] == round(64 / published["batches"], 2)
    assert (published["dedicated_in_use"], published["dedicated_max"]) == (0, 8)
    assert process["in_use"] == 0  # the pool's own figures are unchanged
    assert (
        f"{process['host']}:{os.getpid()} multiplexed  1 shared connection, 0 in flight, "
        f"{published['batches']} batches, mean batch {published['mean_batch']}, "
        "dedicated 0 in use of 8"
    ) in table["text"]
    [row] = local["aliases"]
    [here] = row["async_multiplex"]
    assert (here["connections"], here["commands"]) == (1, 64)


def test_a_forked_child_closes_its_copy_of_the_shared_socket(mux: RedisServer) -> None:
    parent_loop = asyncio.new_event_loop()

    async def use() -> MultiplexedRedis:
        client = aget_redis()
        await client.ping()
        return client  # type: ignore[return-value]

    try:
        client = parent_loop.run_until_complete(use())
        sock = client.multiplexed.connection._writer.get_extra_info("socket")
        fd = sock.fileno()
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                os.close(read_fd)
                try:
                    os.fstat(fd)
                    closed = False
                except OSError:
                    closed = True

                async def child() -> str:
                    mine = aget_redis()
                    await mine.ping()
                    return f"{type(mine).__name__}:{mine is not client}"

                os.write(write_fd, f"{closed}|{asyncio.run(child())}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            report = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert report == "True|MultiplexedRedis:True"
        # The child closed only its own descriptor: the parent's shared connection works.
        assert parent_loop.run_until_complete(client.incr("after-fork")) == 1
        assert client.stats().connects == 1
        assert len(ours(mux)) == 1
    finally:
        parent_loop.close()
    assert ours(mux) == []


def test_a_retired_client_used_again_is_still_closed_with_the_loop(
    fresh_server: RedisServer,
) -> None:
    async def main() -> tuple[MultiplexedRedis, int]:
        old = aget_redis()
        await old.ping()
        with override_settings(REDIS_POOL=settings_for(fresh_server, max_in_flight=64)):
            aget_redis()  # retires the old client
            for _ in range(200):
                if not old.multiplexed.connected:
                    break
                await asyncio.sleep(0.01)
            assert not old.multiplexed.connected
            await old.ping()  # a task that kept the old client: it reconnects
            return old, len(ours(fresh_server))  # type: ignore[return-value]

    with (
        override_settings(REDIS_POOL=settings_for(fresh_server)),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        old, open_while_running = asyncio.run(main())
        gc.collect()
    assert open_while_running == 1
    assert not old.multiplexed.connected
    assert ours(fresh_server) == []
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
