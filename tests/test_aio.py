"""``aget_redis()``: one asyncio pool per (alias, event loop), closed with its loop."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest
import redis.asyncio
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool import AliasNotFound, PoolExhaustedError, aget_redis, aio, get_pool
from redis_pool.aio_pools import AsyncBlockingRedisPool, AsyncRedisPool
from redis_pool.config.defaults import (
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
)
from tests.redis_server import RedisServer, free_port

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def ours(server: RedisServer) -> list[dict[str, str]]:
    """The server's connections opened by redis_pool (any alias) from this process."""
    return [c for c in server.clients_named("redis_pool:") if c["name"].endswith(f":{os.getpid()}")]


def no_pools_left() -> bool:
    return not any(aio.async_pool_stats(alias) for alias in ("default", "other"))


@pytest.fixture
def on(fresh_server: RedisServer) -> Iterator[RedisServer]:
    """REDIS_POOL's default alias pointed at a private server, whose clients we can count."""
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        yield fresh_server


@pytest.fixture(autouse=True)
def _no_async_pools_survive() -> Iterator[None]:
    yield
    assert no_pools_left()


class LoopThread:
    """An event loop running in its own thread, like a server's, until stopped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro_fn: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        async def main() -> T:
            return await coro_fn()

        future: Future[T] = asyncio.run_coroutine_threadsafe(main(), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def settle() -> None:
    """Let a loop finish closing the pools retired by a settings change."""
    await asyncio.sleep(0)  # the call_soon_threadsafe callback that starts the close
    pools = getattr(asyncio.get_running_loop(), aio._ATTR)
    await asyncio.gather(*pools.closing)


# -- the client -----------------------------------------------------------------------------


def test_one_client_per_loop_and_awaitable() -> None:
    async def main() -> redis.asyncio.Redis:
        client = aget_redis()
        assert client is aget_redis() is aget_redis("default")
        assert await aget_redis() is client  # redis-py's Redis is awaitable
        assert client is not aget_redis("other")
        await client.set("k", "v")
        assert await client.get("k") == b"v"
        return client

    first = run(main)
    second = run(main)
    assert first is not second
    assert first.connection_pool is not second.connection_pool


def test_outside_a_running_loop() -> None:
    with pytest.raises(RuntimeError) as excinfo:
        aget_redis()
    assert str(excinfo.value) == (
        "aget_redis() needs a running event loop: call it from async code "
        "(sync code uses get_redis())."
    )


def test_unknown_alias_same_error_as_get_redis() -> None:
    async def main() -> None:
        with pytest.raises(AliasNotFound) as excinfo:
            aget_redis("nope")
        assert str(excinfo.value) == (
            "No Redis pool alias 'nope' in REDIS_POOL; configured: 'default', 'other'."
        )

    run(main)


def test_misconfigured_alias() -> None:
    async def main() -> None:
        with pytest.raises(ImproperlyConfigured, match="REDIS_POOL alias 'bad' is misconfigured"):
            aget_redis("bad")

    with override_settings(REDIS_POOL={"default": {}, "bad": {"max_connections": 0}}):
        run(main)


def test_defaults_match_the_sync_pool() -> None:
    async def main() -> None:
        pool = aget_redis().connection_pool
        sync_pool = get_pool()
        assert type(pool) is AsyncBlockingRedisPool
        assert pool.max_connections == DEFAULT_MAX_CONNECTIONS
        assert pool.timeout == DEFAULT_POOL_TIMEOUT
        kwargs = pool.connection_kwargs
        assert kwargs["socket_timeout"] == DEFAULT_SOCKET_TIMEOUT
        assert kwargs["socket_connect_timeout"] == DEFAULT_SOCKET_CONNECT_TIMEOUT
        assert kwargs["health_check_interval"] == DEFAULT_HEALTH_CHECK_INTERVAL
        assert kwargs["socket_keepalive"] is True
        assert kwargs["client_name"] == sync_pool.connection_kwargs["client_name"]
        host = socket.gethostname().split(".")[0]
        assert kwargs["client_name"].endswith(f":default:{host}:{os.getpid()}")
        retry = kwargs["retry"]
        assert isinstance(retry, AsyncRetry)
        assert retry.get_retries() == DEFAULT_RETRIES
        assert retry._supported_errors == (RedisConnectionError,)
        assert issubclass(pool.connection_class, redis.asyncio.Connection)
        # CLIENT SETINFO's values, looked up once per process rather than per connection.
        driver = kwargs["driver_info"]
        assert (driver.name, driver.lib_version) == ("redis-py", redis.__version__)
        assert await aget_redis().client_getname() == kwargs["client_name"]

    run(main)


def test_same_settings_as_sync_including_url_parts(fresh_server: RedisServer) -> None:
    options = {"url": fresh_server.url.replace("/0", "/3"), "max_connections": 5}

    async def main() -> None:
        client = aget_redis()
        await client.set("k", "v")
        assert client.connection_pool.max_connections == 5
        assert client.connection_pool.connection_kwargs["db"] == 3

    with override_settings(REDIS_POOL=options):
        run(main)
    assert b"db3:keys=1" in fresh_server.command("INFO", "keyspace")


def test_unix_socket(tmp_path: Any) -> None:
    sock = str(tmp_path / "redis.sock")
    with (
        RedisServer("--unixsocket", sock, "--unixsocketperm", "700") as server,
        override_settings(REDIS_POOL={"path": sock}),
    ):

        async def main() -> None:
            client = aget_redis()
            assert issubclass(
                client.connection_pool.connection_class, redis.asyncio.UnixDomainSocketConnection
            )
            await client.set("k", "unix")

        run(main)
        assert server.command("GET", "k") == b"$4\r\nunix\r\n"


def test_unsupported_setting_names_alias_and_key_never_the_password(
    fresh_server: RedisServer,
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{fresh_server.port}/0"

    async def main() -> None:
        with pytest.raises(ImproperlyConfigured) as excinfo:
            aget_redis()
        message = str(excinfo.value)
        assert message == (
            "REDIS_POOL['default'] sets 'command_packer', which redis.asyncio does not "
            "support, so aget_redis() cannot build this alias."
        )
        assert "s3cret" not in repr(excinfo.value)

    with override_settings(REDIS_POOL={"url": url, "command_packer": None}):
        run(main)


def test_pipeline_and_pubsub() -> None:
    async def main() -> None:
        client = aget_redis()
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("p")
            pipe.incr("p")
            assert await pipe.execute() == [1, 2]
        async with client.pubsub() as pubsub:
            await pubsub.subscribe("chan")
            assert await client.publish("chan", "hello") == 1
            message = None
            deadline = time.monotonic() + 5
            while message is None or message["type"] != "message":
                assert time.monotonic() < deadline
                message = await pubsub.get_message(timeout=1)
            assert message["data"] == b"hello"
        stats = aio.async_pool_stats()[0]
        assert stats.in_use == 0

    run(main)


# -- pool limits -----------------------------------------------------------------------------


def test_plain_pool_fails_at_once_when_exhausted(redis_server: RedisServer) -> None:
    options = {"url": redis_server.url, "max_connections": 1, "pool_timeout": None}

    async def main() -> None:
        client = aget_redis()
        pool = client.connection_pool
        assert type(pool) is AsyncRedisPool
        held = await pool.get_connection()
        with pytest.raises(PoolExhaustedError) as excinfo:
            await client.ping()
        assert str(excinfo.value) == (
            "Redis pool 'default' is exhausted: all 1 connections (max_connections) are in "
            "use and it is a plain pool ('pool_timeout': None), so it does not wait."
        )
        await pool.release(held)
        assert await client.ping() is True
        stats = pool.stats()
        assert (stats.exhausted, stats.waits, stats.checkouts, stats.releases) == (1, 0, 2, 2)

    with override_settings(REDIS_POOL=options):
        run(main)


def test_blocking_pool_waits_for_a_connection_then_times_out(redis_server: RedisServer) -> None:
    options = {"url": redis_server.url, "max_connections": 1, "pool_timeout": 0.2}

    async def main() -> None:
        client = aget_redis()
        pool = client.connection_pool
        held = await pool.get_connection()
        start = time.monotonic()
        with pytest.raises(PoolExhaustedError, match=r"within pool_timeout=0\.2s"):
            await client.ping()
        assert time.monotonic() - start >= 0.2
        waiter = asyncio.ensure_future(client.ping())
        await asyncio.sleep(0)  # the waiter is now queued for the pool
        assert pool.stats().waiting == 1
        await pool.release(held)
        assert await waiter is True
        stats = pool.stats()
        assert (stats.waits, stats.wait_timeouts, stats.exhausted, stats.waiting) == (2, 1, 1, 0)
        assert (stats.created, stats.in_use, stats.high_water) == (1, 0, 1)

    with override_settings(REDIS_POOL=options):
        run(main)


def test_concurrent_tasks_share_max_connections(on: RedisServer) -> None:
    options = {"url": on.url, "max_connections": 4}

    async def main() -> None:
        client = aget_redis()
        results = await asyncio.gather(*(client.incr("n") for _ in range(20)))
        assert sorted(results) == list(range(1, 21))
        assert len(ours(on)) == 4
        (stats,) = aio.async_pool_stats()
        # 4 tasks get a connection, the other 16 find none free and queue.
        assert (stats.created, stats.high_water, stats.waits, stats.in_use) == (4, 4, 16, 0)
        assert stats.checkouts == stats.releases == 20
        assert stats.pool_class == "AsyncBlockingRedisPool"
        assert stats.address == f"redis://127.0.0.1:{on.port}/0"

    with override_settings(REDIS_POOL=options):
        run(main)
    assert ours(on) == []


def test_connect_errors_are_counted() -> None:
    options = {"url": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 0.5}

    async def main() -> None:
        with pytest.raises(RedisConnectionError):
            await aget_redis().ping()
        (stats,) = aio.async_pool_stats()
        # the first attempt and DEFAULT_RETRIES retries each fail to connect
        assert stats.errors == 1 + DEFAULT_RETRIES
        assert (stats.created, stats.in_use, stats.checkouts) == (0, 0, 0)

    with override_settings(REDIS_POOL=options):
        run(main)


def test_wrong_password_names_the_alias_never_the_password() -> None:
    with RedisServer(password="right-pw") as server:
        url = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"

        async def main() -> None:
            with pytest.raises(AuthenticationError) as excinfo:
                await aget_redis().ping()
            message = str(excinfo.value)
            assert message.startswith(
                f"Redis alias 'default' could not authenticate to 127.0.0.1:{server.port}: "
            )
            assert "wrong-pw" not in message
            assert "right-pw" not in message

        with override_settings(REDIS_POOL={"url": url}):
            run(main)


def test_late_return_is_logged_by_leak_detection(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"url": redis_server.url, "leak_detection_threshold": 0.2}

    async def checks_out_and_sits_on_it() -> None:
        client = aget_redis()
        pool = client.connection_pool
        connection = await pool.get_connection()
        await asyncio.sleep(0.3)
        await pool.release(connection)
        assert pool.stats().leaks == 1
        assert pool.counters.late_leaks == []  # reported, not piling up

    with override_settings(REDIS_POOL=options), caplog.at_level("WARNING", "redis_pool.leaks"):
        run(checks_out_and_sits_on_it)
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(
        "Possible connection leak in Redis pool 'default': a connection was held for "
    )
    assert "in checks_out_and_sits_on_it" in message  # where it was checked out


def test_read_timeout_is_counted_and_the_connection_dropped(on: RedisServer) -> None:
    options = {"url": on.url, "socket_timeout": 0.2}

    async def main() -> None:
        client = aget_redis()
        await client.ping()
        with pytest.raises(RedisTimeoutError, match="Timeout reading"):
            await client.execute_command("BLPOP", "nothing", "1")  # outlasts socket_timeout
        (stats,) = aio.async_pool_stats()
        assert (stats.errors, stats.created, stats.closed, stats.in_use) == (1, 1, 1, 0)

    with override_settings(REDIS_POOL=options):
        run(main)


# -- one pool per loop, closed with its loop ---------------------------------------------------


def test_each_loop_has_its_own_pool(on: RedisServer) -> None:
    both_running = threading.Barrier(2, timeout=10)
    seen: dict[str, Any] = {}

    async def work(name: str) -> None:
        client = aget_redis()
        seen[name] = client.connection_pool
        await asyncio.gather(*(client.incr("shared") for _ in range(50)))
        await asyncio.to_thread(both_running.wait)
        # Both loops are alive here: one pool each.
        seen[f"{name}-stats"] = len(aio.async_pool_stats())
        await asyncio.gather(*(client.incr("shared") for _ in range(50)))
        for connection in client.connection_pool._available_connections:
            assert connection._writer._loop is asyncio.get_running_loop()

    threads = [threading.Thread(target=lambda n=name: asyncio.run(work(n))) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen["a"] is not seen["b"]
    assert seen["a-stats"] == seen["b-stats"] == 2
    assert on.command("GET", "shared") == b"$3\r\n200\r\n"
    assert ours(on) == []


def test_repeated_asyncio_run_leaks_no_pool_or_socket(on: RedisServer) -> None:
    created = 0

    async def main() -> None:
        nonlocal created
        client = aget_redis()
        await asyncio.gather(*(client.incr("n") for _ in range(5)))
        created += aio.async_pool_stats()[0].created
        assert len(ours(on)) >= 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(50):
            asyncio.run(main())
            assert ours(on) == []
            assert no_pools_left()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert created >= 50
    figures = {"asyncio_run_calls": 50, "connections_opened": created, "left_open": 0}
    print(f"EVIDENCE aio_repeated_asyncio_run {json.dumps(figures, sort_keys=True)}")
    assert on.command("GET", "n") == b"$3\r\n250\r\n"


def test_async_to_sync_per_call_loops_leak_nothing(on: RedisServer) -> None:
    async def incr() -> int:
        return int(await aget_redis().incr("n"))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Each call outside a loop makes (and closes) a fresh loop.
        assert [async_to_sync(incr)() for _ in range(30)] == list(range(1, 31))
        assert ours(on) == []
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_manually_closed_loop(on: RedisServer) -> None:
    loop = asyncio.new_event_loop()
    aget_redis_in(loop)
    loop.run_until_complete(aget_redis_in(loop).ping())
    assert len(ours(on)) == 1

    async def close_running() -> None:
        loop.close()

    with pytest.raises(RuntimeError, match="running"):
        loop.run_until_complete(close_running())
    assert len(ours(on)) == 1  # a failed close() closed nothing, and can be retried
    loop.close()
    assert ours(on) == []
    assert loop.is_closed()


def test_loop_closed_from_inside_another_running_loop(on: RedisServer) -> None:
    other = asyncio.new_event_loop()
    worker = threading.Thread(target=lambda: other.run_until_complete(client_name()))
    worker.start()
    worker.join(10)
    assert len(ours(on)) == 1

    async def main() -> None:
        other.close()  # this thread runs a loop: the disconnects run on a helper thread

    asyncio.run(main())
    assert ours(on) == []


# -- settings changes --------------------------------------------------------------------------


def test_override_settings_rebuilds_and_closes_the_old_pool(fresh_server: RedisServer) -> None:
    with RedisServer() as second:
        first_settings = {"default": {"url": fresh_server.url}}
        second_settings = {"default": {"url": second.url}}

        async def main() -> None:
            with override_settings(REDIS_POOL=first_settings):
                old = aget_redis()
                await old.set("where", "first")
                held = await old.connection_pool.get_connection()
                await old.ping()
                assert len(ours(fresh_server)) == 2
                with override_settings(REDIS_POOL=second_settings):
                    new = aget_redis()
                    assert new is not old
                    await new.set("where", "second")
                    await settle()
                    assert len(ours(fresh_server)) == 1  # idle ones closed; the held one not
                    await old.connection_pool.release(held)
                    assert ours(fresh_server) == []  # closed as it came back
                    assert len(ours(second)) == 1
                    assert len(aio.async_pool_stats()) == 1
                await settle()
                assert ours(second) == []
                assert await aget_redis().get("where") == b"first"

        asyncio.run(main())
        assert ours(second) == []
    assert ours(fresh_server) == []


def test_override_settings_from_another_thread_than_the_loop(fresh_server: RedisServer) -> None:
    server_loop = LoopThread()
    try:
        with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
            old = server_loop.call(lambda: aget_redis().ping())
            assert old is True
            assert len(ours(fresh_server)) == 1
            db2 = {"default": {"url": fresh_server.url.replace("/0", "/2")}}
            with override_settings(REDIS_POOL=db2):
                server_loop.call(settle)
                assert ours(fresh_server) == []
                server_loop.call(lambda: aget_redis().set("k", "v"))
                assert len(ours(fresh_server)) == 1
            server_loop.call(settle)
            assert ours(fresh_server) == []
    finally:
        server_loop.close()
    assert b"db2:keys=1" in fresh_server.command("INFO", "keyspace")


# -- fork --------------------------------------------------------------------------------------


def test_forked_child_never_uses_the_parents_connections(on: RedisServer) -> None:
    parent_loop = asyncio.new_event_loop()
    try:
        parent_client = aget_redis_in(parent_loop)
        parent_loop.run_until_complete(parent_client.ping())
        parent_name = parent_loop.run_until_complete(parent_client.client_getname())
        assert len(ours(on)) == 1
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                os.close(read_fd)
                # What a server's worker does: a fresh loop of its own.
                fresh = asyncio.run(client_name())
                forgotten = getattr(parent_loop, aio._ATTR).clients == {}
                os.write(write_fd, f"{fresh}|{forgotten}|{aio.async_pool_stats()}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            report = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert report == f"{parent_name.rsplit(':', 1)[0]}:{pid}|True|[]"
        # The child closed only its copy of the socket: the parent's connection still works.
        assert parent_loop.run_until_complete(parent_client.client_getname()) == parent_name
        assert len(ours(on)) == 1
    finally:
        parent_loop.close()
    assert ours(on) == []


async def client_name() -> str:
    return str(await aget_redis().client_getname())


def aget_redis_in(loop: asyncio.AbstractEventLoop) -> redis.asyncio.Redis:
    async def get() -> redis.asyncio.Redis:
        return aget_redis()

    return loop.run_until_complete(get())
