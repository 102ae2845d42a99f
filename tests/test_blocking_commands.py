"""Blocking commands (BLPOP, XREAD BLOCK, WAIT, ...) under a ``socket_timeout`` shorter than
their block time: they return at their block time, a stalled server fails them at block
time + grace (one ``socket_timeout``), and a block forever waits as asked.

The same proof as the issue's (5 s ``socket_timeout``, 6-8 s blocks), scaled down to keep
the suite fast: 0.5 s ``socket_timeout``, 1 s blocks. The commands of one test run in
parallel, each on its own connection, and each is timed on its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio.connection
import redis.connection
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool import aget_redis, get_pool, get_redis, pool_stats
from redis_pool.pools.asyncio import AsyncRedisPool
from redis_pool.pools.deadlines import (
    BLOCKING_COMMANDS,
    NOT_BLOCKING,
    block_seconds,
    keepalive_defaults,
    reply_timeout,
)
from redis_pool.pools.sync import RedisPool
from tests.redis_server import RedisServer

SOCKET_TIMEOUT = 0.5  # also the grace period a blocking command's reply gets
BLOCK = 1  # seconds: longer than SOCKET_TIMEOUT, as BLPOP 8 is longer than the default 5
SLACK = 0.6  # scheduling on a loaded 2-core machine; still below the next deadline


def settings_for(server: RedisServer) -> dict[str, Any]:
    return {"default": {"url": server.url, "socket_timeout": SOCKET_TIMEOUT, "max_connections": 32}}


def commands(client: Any) -> dict[str, Callable[[], Any]]:
    """Each blocking command of the issue with BLOCK as its block time, on empty keys.
    Works for a sync and an async client (the async ones return coroutines)."""
    ms = BLOCK * 1000
    return {
        "BLPOP": lambda: client.blpop(["q"], timeout=BLOCK),
        "BRPOP": lambda: client.brpop(["q"], timeout=BLOCK),
        "BRPOPLPUSH": lambda: client.brpoplpush("q", "dst", timeout=BLOCK),
        "BLMOVE": lambda: client.blmove("q", "dst", BLOCK, "LEFT", "RIGHT"),
        "BZPOPMIN": lambda: client.bzpopmin(["z"], timeout=BLOCK),
        "BZPOPMAX": lambda: client.bzpopmax(["z"], timeout=BLOCK),
        "BLMPOP": lambda: client.blmpop(BLOCK, 1, "q", direction="LEFT"),
        "BZMPOP": lambda: client.bzmpop(BLOCK, 1, ["z"], min=True),
        "XREAD": lambda: client.xread({"s": "$"}, block=ms),
        "XREADGROUP": lambda: client.xreadgroup("g", "c", {"s": ">"}, block=ms),
        "WAIT": lambda: client.wait(1, ms),  # one replica asked for, none exists
        "WAITAOF": lambda: client.waitaof(0, 1, ms),
    }


EMPTY = {"WAIT": 0, "WAITAOF": [0, 0]}  # the others answer nothing (None, [] or {})


def server_knows(server: RedisServer, command: str) -> bool:
    # COMMAND INFO answers a null entry for a command the server does not have.
    return server.command("COMMAND", "INFO", command) not in (b"*1\r\n$-1\r\n", b"*1\r\n*-1\r\n")


def prepare(server: RedisServer) -> list[str]:
    """Sets up the keys the commands need; returns the names of the commands to run."""
    server.command("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    # WAITAOF is Redis 7.2+ (Valkey has it); Redis 7.0 answers "unknown command".
    return [name for name in commands(None) if name != "WAITAOF" or server_knows(server, name)]


def run_sync(names: list[str]) -> dict[str, tuple[float, Any]]:
    """Runs each command in a thread of its own; name -> (seconds, result or exception)."""
    calls = commands(get_redis())

    def timed(name: str) -> tuple[float, Any]:
        start = time.monotonic()
        try:
            result: Any = calls[name]()
        except Exception as exc:
            result = exc
        return time.monotonic() - start, result

    with ThreadPoolExecutor(len(names)) as threads:
        return dict(zip(names, threads.map(timed, names), strict=True))


async def run_async(names: list[str]) -> dict[str, tuple[float, Any]]:
    calls = commands(aget_redis())

    async def timed(name: str) -> tuple[float, Any]:
        start = time.monotonic()
        try:
            result: Any = await calls[name]()
        except Exception as exc:
            result = exc
        return time.monotonic() - start, result

    timings = await asyncio.gather(*(timed(name) for name in names))
    return dict(zip(names, timings, strict=True))


def warm_up(count: int) -> None:
    """Opens ``count`` connections now: a stopped server still accepts TCP connections
    (the kernel does) but never answers the handshake, which is not what is tested here."""
    pool = get_pool()
    held = [pool.get_connection() for _ in range(count)]
    for connection in held:
        connection.send_command("PING")
        assert connection.read_response() in (b"PONG", "PONG")
    for connection in held:
        pool.release(connection)


async def awarm_up(count: int) -> None:
    client = aget_redis()
    pool = client.connection_pool
    held = [await pool.get_connection() for _ in range(count)]
    for connection in held:
        await connection.send_command("PING")
        assert await connection.read_response() in (b"PONG", "PONG")
    for connection in held:
        await pool.release(connection)


@contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """The server process frozen (SIGSTOP): its sockets stay open, nothing answers."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def assert_returned_at_block_time(timings: dict[str, tuple[float, Any]]) -> None:
    for name, (elapsed, result) in timings.items():
        assert not isinstance(result, BaseException), f"{name}: {result!r}"
        assert result == EMPTY.get(name) or (name not in EMPTY and not result), (name, result)
        # Served by the server when the block ended: after BLOCK (twice socket_timeout).
        # The answer itself proves the deadline held (a late one raises); the upper bound
        # only says nothing hung, with room for a loaded machine's scheduling.
        assert BLOCK - 0.05 <= elapsed < BLOCK + SOCKET_TIMEOUT + SLACK, (name, elapsed)


def assert_failed_at_block_plus_grace(timings: dict[str, tuple[float, Any]]) -> None:
    for name, (elapsed, result) in timings.items():
        assert isinstance(result, RedisTimeoutError), f"{name}: {result!r}"
        assert BLOCK + SOCKET_TIMEOUT - 0.05 <= elapsed < BLOCK + SOCKET_TIMEOUT + SLACK, (
            name,
            elapsed,
        )


def test_blocking_commands_return_at_their_block_time(fresh_server: RedisServer) -> None:
    names = prepare(fresh_server)
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        warm_up(len(names))  # time the commands, not the connects
        assert_returned_at_block_time(run_sync(names))
        stats = pool_stats()
        assert stats.errors == 0
        assert stats.in_use == 0


def test_async_blocking_commands_return_at_their_block_time(fresh_server: RedisServer) -> None:
    names = prepare(fresh_server)

    async def main() -> dict[str, tuple[float, Any]]:
        await awarm_up(len(names))  # time the commands, not the connects
        return await run_async(names)

    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        assert_returned_at_block_time(asyncio.run(main()))


def test_stalled_server_fails_blocking_commands_at_block_time_plus_grace(
    fresh_server: RedisServer,
) -> None:
    names = prepare(fresh_server)
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        warm_up(len(names))
        with stopped(fresh_server):
            timings = run_sync(names)
        assert_failed_at_block_plus_grace(timings)
        assert get_redis().ping()  # the timed-out connections were dropped, the pool works
        assert pool_stats().in_use == 0


def test_async_stalled_server_fails_blocking_commands_at_block_time_plus_grace(
    fresh_server: RedisServer,
) -> None:
    names = prepare(fresh_server)

    async def main() -> dict[str, tuple[float, Any]]:
        await awarm_up(len(names))
        with stopped(fresh_server):
            timings = await run_async(names)
        assert await aget_redis().ping()
        return timings

    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        assert_failed_at_block_plus_grace(asyncio.run(main()))


def time_get_on_stalled(server: RedisServer, get: Callable[[], Any]) -> float:
    with stopped(server):
        start = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            get()
        return time.monotonic() - start


def test_next_command_on_the_connection_has_socket_timeout_again(
    fresh_server: RedisServer,
) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        client = get_redis()
        assert client.blpop(["q"], timeout=BLOCK) is None
        assert pool_stats().created == 1  # the GET below gets the BLPOP's connection
        elapsed = time_get_on_stalled(fresh_server, lambda: client.get("k"))
        assert SOCKET_TIMEOUT - 0.05 <= elapsed < BLOCK + SOCKET_TIMEOUT - 0.25
        assert client.xread({"s": "$"}, block=BLOCK * 1000) in ([], {})
        pipe = client.pipeline()
        pipe.get("k")
        with stopped(fresh_server):  # a pipeline too: sent without send_command()
            start = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                pipe.execute()
            elapsed = time.monotonic() - start
        assert SOCKET_TIMEOUT - 0.05 <= elapsed < BLOCK + SOCKET_TIMEOUT - 0.25


def test_async_next_command_on_the_connection_has_socket_timeout_again(
    fresh_server: RedisServer,
) -> None:
    async def main() -> list[float]:
        client = aget_redis()
        assert await client.blpop(["q"], timeout=BLOCK) is None
        elapsed = []
        for _ in range(2):  # after a timeout too: the reconnect's handshake is prompt
            with stopped(fresh_server):
                start = time.monotonic()
                with pytest.raises(RedisTimeoutError):
                    await client.get("k")
                elapsed.append(time.monotonic() - start)
            assert await client.blpop(["q"], timeout=BLOCK) is None
        return elapsed

    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        for elapsed in asyncio.run(main()):
            assert SOCKET_TIMEOUT - 0.05 <= elapsed < BLOCK + SOCKET_TIMEOUT - 0.25


PUSH_AFTER = BLOCK + SOCKET_TIMEOUT + 0.3  # later than any deadline a timeout could give


def push_later(server: RedisServer) -> threading.Timer:
    def push() -> None:
        server.command("RPUSH", "q", "job")
        server.command("XADD", "s", "*", "f", "v")

    timer = threading.Timer(PUSH_AFTER, push)
    timer.start()
    return timer


def test_block_forever_waits_as_asked(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        client = get_redis()
        timer = push_later(fresh_server)
        with ThreadPoolExecutor(2) as threads:
            start = time.monotonic()
            popped = threads.submit(client.blpop, ["q"], 0)
            read = threads.submit(client.xread, {"s": "$"}, None, 0)
            assert popped.result(timeout=10) == (b"q", b"job")
            assert read.result(timeout=10)[0][0] == b"s"
            assert time.monotonic() - start >= PUSH_AFTER - 0.05
        timer.join()


def test_async_block_forever_waits_as_asked(fresh_server: RedisServer) -> None:
    async def main() -> tuple[Any, Any]:
        client = aget_redis()
        timer = push_later(fresh_server)
        try:
            return await asyncio.wait_for(
                asyncio.gather(client.blpop(["q"], 0), client.xread({"s": "$"}, block=0)), 10
            )
        finally:
            timer.join()

    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        start = time.monotonic()
        popped, read = asyncio.run(main())
        assert time.monotonic() - start >= PUSH_AFTER - 0.05
        assert popped == (b"q", b"job")
        assert read[0][0] == b"s" if isinstance(read, list) else b"s" in read


def keepalive_of(sock: socket.socket) -> tuple[int, int, int, int]:
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    )


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux keepalive options")
def test_block_forever_a_dead_server_is_noticed(fresh_server: RedisServer) -> None:
    # A dead host or network path: keepalive probes (30 s idle, 3 probes 5 s apart) end
    # the wait in about 45 s; checked on the real socket. A dead server process: its
    # kernel closes the socket, and the waiting call fails at once.
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        pool = get_pool()
        connection = pool.get_connection()
        try:
            connection.connect()
            assert keepalive_of(connection._sock) == (1, 30, 5, 3)
        finally:
            pool.release(connection)
        with ThreadPoolExecutor(1) as threads:
            popped = threads.submit(get_redis().blpop, ["q"], 0)
            time.sleep(SOCKET_TIMEOUT + 0.2)
            assert not popped.done()
            fresh_server.kill()
            start = time.monotonic()
            with pytest.raises(RedisConnectionError):
                popped.result(timeout=5)
            assert time.monotonic() - start < 1.0


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux keepalive options")
def test_async_block_forever_a_dead_server_is_noticed(fresh_server: RedisServer) -> None:
    async def main() -> float:
        client = aget_redis()
        connection = await client.connection_pool.get_connection()
        try:
            sock = connection._writer.get_extra_info("socket")
            assert keepalive_of(sock) == (1, 30, 5, 3)
        finally:
            await client.connection_pool.release(connection)
        popped = asyncio.ensure_future(client.blpop(["q"], 0))
        await asyncio.sleep(SOCKET_TIMEOUT + 0.2)
        assert not popped.done()
        fresh_server.kill()
        start = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(popped, 5)
        return time.monotonic() - start

    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        assert asyncio.run(main()) < 1.0


# -- reading the block time from the command (pure) ------------------------------------------


@pytest.mark.parametrize(
    ("args", "seconds"),
    [
        (("BLPOP", "a", "b", 8), 8.0),
        ((b"brpop", b"a", b"0.5"), 0.5),
        (("blmove", "a", "b", "LEFT", "RIGHT", "0"), 0.0),
        (("BLMPOP", "2.5", "1", "q", "LEFT"), 2.5),
        (("BZMPOP", 3, 1, "z", "MIN"), 3.0),
        (("XREAD", "COUNT", "10", "BLOCK", "6000", "STREAMS", "s", "$"), 6.0),
        ((b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"s", b">"), 0.0),
        (("XREAD", "COUNT", "1", "STREAMS", "block", "$"), None),  # a stream named "block"
        (("XREAD", "STREAMS", "s", "$"), None),  # no BLOCK: does not block
        (("WAIT", 1, 2500), 2.5),
        (("WAITAOF", 0, 1, 100), 0.1),
        (("BLPOP", "q", "soon"), None),  # the server will refuse it
        (("BLPOP", "q", "-1"), None),
        (("BLPOP", "q", "inf"), None),
        (("WAIT",), None),
    ],
)
def test_block_seconds(args: tuple[Any, ...], seconds: float | None) -> None:
    assert block_seconds(args) == seconds


def test_reply_timeout() -> None:
    assert reply_timeout(("BLPOP", "q", 8), 5.0) == 13.0
    assert reply_timeout(("BLPOP", "q", 0), 5.0) is None  # block forever: no deadline
    assert reply_timeout(("BLPOP", "q", 8), None) is NOT_BLOCKING  # no deadline anyway
    assert reply_timeout(("XREAD", "STREAMS", "s", "$"), 5.0) is NOT_BLOCKING
    assert {"BLPOP", "blpop", b"BLPOP", b"blpop"} <= BLOCKING_COMMANDS
    assert "GET" not in BLOCKING_COMMANDS


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux keepalive options")
def test_keepalive_defaults_where_redis_py_leaves_them_to_the_os() -> None:
    # redis-py 7 leaves socket_keepalive_options empty (the OS default: 2 hours idle).
    connection = SimpleNamespace(socket_keepalive=True, socket_keepalive_options={})
    keepalive_defaults(connection, {})
    assert connection.socket_keepalive_options == {
        socket.TCP_KEEPIDLE: 30,
        socket.TCP_KEEPINTVL: 5,
        socket.TCP_KEEPCNT: 3,
    }
    chosen = SimpleNamespace(socket_keepalive=True, socket_keepalive_options={})
    keepalive_defaults(chosen, {"socket_keepalive_options": {}})  # the user's choice: kept
    assert chosen.socket_keepalive_options == {}
    off = SimpleNamespace(socket_keepalive=False, socket_keepalive_options={})
    keepalive_defaults(off, {})
    assert off.socket_keepalive_options == {}


class CountingConnection(redis.connection.Connection):
    """A user's connection class with a send_command of its own: ours must call it."""

    sent = 0

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        CountingConnection.sent += 1
        super().send_command(*args, **kwargs)


class AsyncCountingConnection(redis.asyncio.connection.Connection):
    sent = 0

    async def send_command(self, *args: Any, **kwargs: Any) -> None:
        AsyncCountingConnection.sent += 1
        await super().send_command(*args, **kwargs)


def test_a_connection_class_with_its_own_send_command(fresh_server: RedisServer) -> None:
    options = {"port": fresh_server.port, "socket_timeout": SOCKET_TIMEOUT}
    pool = RedisPool(connection_class=CountingConnection, **options)
    try:
        client = redis.Redis(connection_pool=pool)
        start = time.monotonic()
        assert client.blpop(["q"], timeout=BLOCK) is None
        assert time.monotonic() - start >= BLOCK - 0.05
        assert CountingConnection.sent >= 1
    finally:
        pool.disconnect()

    async def main() -> None:
        apool = AsyncRedisPool(connection_class=AsyncCountingConnection, **options)
        aclient = redis.asyncio.Redis(connection_pool=apool)
        assert await aclient.blpop(["q"], timeout=BLOCK) is None
        await apool.disconnect()

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start >= BLOCK - 0.05
    assert AsyncCountingConnection.sent >= 1
