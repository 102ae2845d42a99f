"""``MultiplexedRedis`` under cancellation and faults, against real redis-server processes
(through a delaying loopback proxy where commands must be caught in flight)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool.multiplex import MultiplexedRedis
from tests.latency_proxy import LatencyProxy
from tests.redis_server import RedisServer

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def mux_for(url: str, **kwargs: Any) -> MultiplexedRedis:
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=8, timeout=5, **kwargs
    )
    return MultiplexedRedis(pool)


async def close(mux: MultiplexedRedis) -> None:
    await mux.aclose()
    await mux.connection_pool.disconnect()


async def cancellation_storm(url: str, tasks: int, seed: int) -> dict[str, int]:
    """``tasks`` tasks each SET a unique token, ECHO it and GET it back while 30% are
    cancelled at random moments; every reply a task sees is checked against its own token."""
    rng = random.Random(seed)
    mux = mux_for(url)
    await mux.ping()
    counts = {"ok": 0, "wrong": 0, "cancelled": 0, "errors": 0}

    async def one(i: int) -> None:
        token = f"token-{i}-{rng.random()}".encode()
        key = f"key:{i}"
        try:
            if await mux.set(key, token) is not True:
                counts["wrong"] += 1
            if await mux.echo(token) != token:
                counts["wrong"] += 1
            if await mux.get(key) != token:
                counts["wrong"] += 1
            else:
                counts["ok"] += 1
        except asyncio.CancelledError:
            counts["cancelled"] += 1
            raise
        except Exception:
            counts["errors"] += 1

    loop = asyncio.get_running_loop()
    running = [asyncio.create_task(one(i)) for i in range(tasks)]
    for task in rng.sample(running, k=int(tasks * 0.3)):
        loop.call_later(rng.uniform(0, 0.08), task.cancel)
    await asyncio.wait(running, timeout=60)
    assert all(task.done() for task in running)
    # In sync afterwards: fresh round trips get their own replies.
    for i in range(20):
        assert await mux.echo(f"after-{i}") == f"after-{i}".encode()
    stats = mux.stats()
    counts["dropped"] = stats.dropped_replies
    counts["in_flight"] = stats.in_flight
    counts["connects"] = stats.connects
    await close(mux)
    return counts


def test_cancellation_never_misroutes_a_reply(redis_server: RedisServer) -> None:
    with LatencyProxy(redis_server.port, delay_ms=1) as proxy:
        counts = run(lambda: cancellation_storm(proxy.url, 2_000, seed=13))
    assert counts["wrong"] == 0
    assert counts["errors"] == 0
    assert counts["cancelled"] > 300  # the storm hit: most of the 600 timers fired mid-command
    assert counts["ok"] + counts["cancelled"] == 2_000
    assert counts["dropped"] > 0  # cancelled after the write: replies read and dropped
    assert counts["in_flight"] == 0
    assert counts["connects"] == 1


def test_broken_connection_fails_in_flight_promptly_and_reconnects(
    redis_server: RedisServer,
) -> None:
    async def main() -> tuple[list[Any], float, Any, int]:
        proxy = LatencyProxy(redis_server.port, delay_ms=1000).start()
        # Every reply takes 1 s, the handshake's too: generous timeouts, so that only the
        # break (not a loaded machine's slow handshake) can fail these commands.
        mux = mux_for(proxy.url, socket_timeout=10, socket_connect_timeout=10)
        await mux.ping()
        loop = asyncio.get_running_loop()
        calls = [asyncio.create_task(mux.incr("n")) for _ in range(50)]
        await asyncio.sleep(0.02)  # written; the replies are held in the proxy
        start = loop.time()
        proxy.stop()  # the connection breaks (the proxy process is killed)
        results = await asyncio.gather(*calls, return_exceptions=True)
        took = loop.time() - start
        with LatencyProxy(redis_server.port, delay_ms=0, port=proxy.port):
            after = await mux.incr("n")
            connects = mux.stats().connects
            await close(mux)
        return results, took, after, connects

    results, took, after, connects = run(main)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    assert took < 0.8  # at once, not when the replies were due (1 s), nor a timeout
    assert after == 51  # the 50 lost replies' commands had run: failed is not "not run"
    assert connects == 2


def test_stalled_server_fails_in_flight_at_socket_timeout(fresh_server: RedisServer) -> None:
    async def main() -> tuple[list[Any], float, Any]:
        mux = mux_for(fresh_server.url, socket_timeout=0.5)
        await mux.ping()
        loop = asyncio.get_running_loop()
        assert fresh_server.proc is not None
        fresh_server.proc.send_signal(signal.SIGSTOP)
        try:
            start = loop.time()
            results = await asyncio.gather(
                *(mux.get(f"k{i}") for i in range(20)), return_exceptions=True
            )
            took = loop.time() - start
        finally:
            fresh_server.proc.send_signal(signal.SIGCONT)
        after = await mux.ping()
        stats = mux.stats()
        assert stats.timeouts == 1
        assert stats.failed == 20
        assert stats.connects == 2
        await close(mux)
        return results, took, after

    results, took, after = run(main)
    assert all(isinstance(r, RedisTimeoutError) for r in results), results
    assert 0.45 <= took < 1.5
    assert after is True


def test_socket_timeout_is_per_reply_not_per_batch(redis_server: RedisServer) -> None:
    """A long stream of replies that keeps arriving never times out as a whole."""

    async def main() -> tuple[int, float]:
        mux = mux_for(redis_server.url, socket_timeout=0.4)
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        while loop.time() - start < 1.2:  # three socket_timeouts of steady traffic
            pipe = mux.pipeline(transaction=False)
            for _ in range(2000):
                pipe.incr("steady")
            done += len(await pipe.execute())
        took = loop.time() - start
        assert mux.stats().timeouts == 0
        await close(mux)
        return done, took

    done, took = run(main)
    assert took > 1.2
    assert done >= 2000


def test_redis_restarted_mid_traffic_recovers(fresh_server: RedisServer) -> None:
    port = fresh_server.port

    async def main() -> dict[str, Any]:
        mux = mux_for(fresh_server.url, socket_timeout=1)
        loop = asyncio.get_running_loop()
        stop = loop.time() + 3.0
        seen = {"ok": 0, "errors": 0, "first_ok_after_restart": None}
        restarted_at: list[float] = []

        async def worker(i: int) -> None:
            while loop.time() < stop:
                try:
                    await mux.set(f"w{i}", i)
                    assert int(await mux.get(f"w{i}") or -1) in (i, -1)
                    seen["ok"] += 1
                    if restarted_at and seen["first_ok_after_restart"] is None:
                        seen["first_ok_after_restart"] = loop.time() - restarted_at[0]
                except (RedisConnectionError, RedisTimeoutError):
                    seen["errors"] += 1
                    await asyncio.sleep(0.01)

        workers = [asyncio.create_task(worker(i)) for i in range(32)]
        await asyncio.sleep(0.5)
        fresh_server.kill()
        await asyncio.sleep(0.5)
        replacement = RedisServer(port=port)
        await loop.run_in_executor(None, replacement.start)
        restarted_at.append(loop.time())
        try:
            await asyncio.wait_for(asyncio.gather(*workers), timeout=15)  # nothing hangs
            assert await mux.ping() is True
            seen["connects"] = mux.stats().connects
            seen["in_flight"] = mux.stats().in_flight
            await close(mux)
        finally:
            replacement.cleanup()
        return seen

    seen = run(main)
    assert seen["errors"] > 0
    assert seen["ok"] > 0
    assert seen["first_ok_after_restart"] is not None
    assert seen["first_ok_after_restart"] < 3.0
    assert seen["connects"] >= 2
    assert seen["in_flight"] == 0


def test_server_down_fails_fast_then_recovers(fresh_server: RedisServer) -> None:
    port = fresh_server.port

    async def main() -> tuple[float, Any]:
        mux = mux_for(fresh_server.url, socket_connect_timeout=1)
        await mux.ping()
        fresh_server.kill()
        start = time.monotonic()
        for _ in range(3):  # the dead connection, then refused reconnects
            with pytest.raises(RedisConnectionError):
                await mux.get("x")
        took = time.monotonic() - start
        replacement = RedisServer(port=port).start()
        try:
            value = await mux.ping()
            await close(mux)
        finally:
            replacement.cleanup()
        return took, value

    took, value = run(main)
    assert took < 1.0
    assert value is True


def test_aclose_fails_waiting_commands_and_reopens(redis_server: RedisServer) -> None:
    async def main() -> tuple[list[Any], Any]:
        with LatencyProxy(redis_server.port, delay_ms=50) as proxy:
            mux = mux_for(proxy.url)
            await mux.ping()
            calls = [asyncio.create_task(mux.incr("c")) for _ in range(10)]
            await asyncio.sleep(0.01)
            await mux.multiplexed.aclose()
            results = await asyncio.gather(*calls, return_exceptions=True)
            again = await mux.ping()
            await close(mux)
        return results, again

    results, again = run(main)
    assert all(isinstance(r, RedisConnectionError) for r in results)
    assert again is True


def test_a_blocked_loop_is_not_a_stalled_server(redis_server: RedisServer) -> None:
    """Replies that arrived while other code held the loop past socket_timeout are read,
    not failed as a timeout."""

    async def main() -> tuple[list[Any], int]:
        mux = mux_for(redis_server.url, socket_timeout=0.2)
        await mux.ping()
        calls = [asyncio.create_task(mux.incr("blocked")) for _ in range(10)]
        await asyncio.sleep(0)  # queued
        await asyncio.sleep(0)  # written
        time.sleep(0.5)  # someone's CPU-bound code holds the loop
        results = await asyncio.gather(*calls, return_exceptions=True)
        timeouts = mux.stats().timeouts
        await close(mux)
        return results, timeouts

    results, timeouts = run(main)
    assert sorted(results) == list(range(1, 11))
    assert timeouts == 0


def test_connect_failure_fails_queued_commands_without_secrets() -> None:
    with RedisServer(password="s3cret-pw") as server:
        wrong = f"redis://:wrong-pw-123@127.0.0.1:{server.port}/0"

        async def main() -> list[Any]:
            mux = mux_for(wrong)
            results = await asyncio.gather(
                *(mux.get("x") for _ in range(5)), return_exceptions=True
            )
            assert mux.stats().connections == 0
            await close(mux)
            return results

        results = run(main)
    for result in results:
        assert isinstance(result, RedisConnectionError)  # AuthenticationError is one
        assert "wrong-pw-123" not in repr(result)
        assert "s3cret-pw" not in repr(result)


def test_reconnect_follows_the_pools_retry_policy(fresh_server: RedisServer) -> None:
    """The server is down when the command comes; the pool's retry policy (4 tries, 0.25 s
    apart) reconnects once it is back, and the command succeeds instead of failing."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ConstantBackoff

    port = fresh_server.port
    fresh_server.kill()
    replacement = RedisServer(port=port)

    async def main() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()

        async def restart_later() -> None:
            await asyncio.sleep(0.4)
            # An executor thread: it outlives the start (the server dies with its thread).
            await loop.run_in_executor(None, replacement.start)

        mux = mux_for(fresh_server.url, retry=Retry(ConstantBackoff(0.25), 4))
        start = time.monotonic()
        restarting = asyncio.create_task(restart_later())
        value = await mux.incr("after-retry")
        took = time.monotonic() - start
        await restarting
        await close(mux)
        return value, took

    try:
        value, took = run(main)
    finally:
        replacement.cleanup()
    assert value == 1
    assert 0.4 <= took < 2.0
