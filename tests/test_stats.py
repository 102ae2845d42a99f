"""Per-process pool statistics, measured by the pools themselves, against a real Redis."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from typing import Any

import pytest
from django.test import override_settings

from redis_pool import PoolExhaustedError, PoolStats, get_pool, get_redis, pool_stats
from redis_pool.config.alias import parse_alias
from redis_pool.pools.sync import build_pool
from redis_pool.stats.leaks import capture
from tests.helpers import holding, wait_for
from tests.redis_server import LOOPBACK, RedisServer, free_port

# Every field of PoolStats, as the README documents them: a change here is a change of
# the published schema.
FIELDS = {
    "alias",
    "pid",
    "pool_class",
    "address",
    "max_connections",
    "open",
    "in_use",
    "idle",
    "waiting",
    "created",
    "closed",
    "checkouts",
    "releases",
    "waits",
    "wait_timeouts",
    "exhausted",
    "errors",
    "leaks",
    "high_water",
    "wait",
    "hold",
    "since",
    "connect",
    "host",
    "client_name",
    "leak_detection_threshold",
    "publishes",
    "publish_errors",
}
TIMING_FIELDS = {"count", "total_ms", "mean_ms", "p95_ms", "max_ms"}


def settings_for(server: RedisServer, **options: Any) -> dict[str, Any]:
    return {"default": {"url": server.url, "publish_stats": False, **options}}


@pytest.mark.parametrize("pool_timeout", [2.0, None], ids=["blocking", "plain"])
def test_counts_of_a_sequence_of_commands(fresh_server: RedisServer, pool_timeout: Any) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server, pool_timeout=pool_timeout)):
        client = get_redis()
        for i in range(5):
            client.set(f"k{i}", i)
        stats = pool_stats()
        expected_class = "BlockingRedisPool" if pool_timeout else "RedisPool"
        assert stats.pool_class == expected_class
        assert (stats.created, stats.closed, stats.open) == (1, 0, 1)
        assert (stats.in_use, stats.idle, stats.waiting) == (0, 1, 0)
        assert (stats.checkouts, stats.releases, stats.high_water) == (5, 5, 1)
        assert (stats.waits, stats.wait_timeouts, stats.exhausted, stats.errors) == (0, 0, 0, 0)
        assert stats.hold.count == 5
        assert 0 < stats.hold.max_ms < 1000
        assert stats.hold.mean_ms <= stats.hold.p95_ms <= stats.hold.max_ms
        assert stats.hold.total_ms >= stats.hold.max_ms
        assert stats.wait.count == 0  # nobody waited
        assert stats.connect.count == 1
        assert stats.connect.max_ms > 0
        assert stats.max_connections == 32
        assert stats.client_name == fresh_server.clients_named("redis_pool:")[0]["name"]


@pytest.mark.parametrize("pool_timeout", [2.0, None], ids=["blocking", "plain"])
def test_gauges_follow_checkouts_and_returns(fresh_server: RedisServer, pool_timeout: Any) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server, pool_timeout=pool_timeout)):
        pool = get_pool()
        with holding(pool, 3):
            stats = pool_stats()
            assert (stats.in_use, stats.open, stats.idle, stats.high_water) == (3, 3, 0, 3)
            assert (stats.checkouts, stats.releases) == (3, 0)
        stats = pool_stats()
        assert (stats.in_use, stats.open, stats.idle, stats.high_water) == (0, 3, 3, 3)
        assert (stats.checkouts, stats.releases) == (3, 3)
        with holding(pool, 1):
            assert pool_stats().high_water == 3  # a mark, not a gauge
        pool.disconnect()
        stats = pool_stats()
        assert (stats.open, stats.closed, stats.idle) == (0, 3, 0)


def test_blocking_pool_counts_a_wait_and_times_it(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server, max_connections=1)):
        pool = get_pool()
        held = pool.get_connection()
        result: list[Any] = []
        waiter = threading.Thread(target=lambda: result.append(get_redis().ping()))
        waiter.start()
        try:
            wait_for(lambda: pool_stats().waiting == 1, 5, "the caller to wait")
            time.sleep(0.05)  # the wait has a known minimum length, not an assertion
        finally:
            pool.release(held)
            waiter.join(5)
        assert result == [True]
        stats = pool_stats()
        assert (stats.waits, stats.waiting, stats.wait_timeouts, stats.exhausted) == (1, 0, 0, 0)
        assert stats.wait.count == 1
        assert stats.wait.max_ms >= 50
        assert stats.wait.total_ms == stats.wait.max_ms


def test_exhaustion_is_counted_for_both_kinds(fresh_server: RedisServer) -> None:
    pools = {
        "default": {"url": fresh_server.url, "max_connections": 1, "pool_timeout": 0.05},
        "plain": {"url": fresh_server.url, "max_connections": 1, "pool_timeout": None},
    }
    with override_settings(REDIS_POOL=pools):
        for alias in pools:
            with holding(get_pool(alias), 1), pytest.raises(PoolExhaustedError):
                get_redis(alias).ping()
        blocking, plain = pool_stats(), pool_stats("plain")
        assert (blocking.exhausted, blocking.wait_timeouts, blocking.waits) == (1, 1, 1)
        assert (plain.exhausted, plain.wait_timeouts, plain.waits) == (1, 0, 0)
        # The timed-out wait is in the wait timing (count == waits), the full 50 ms of it.
        assert blocking.wait.count == 1
        assert blocking.wait.max_ms >= 50
        for stats in (blocking, plain):
            assert (stats.in_use, stats.checkouts, stats.releases) == (0, 1, 1)


def test_connection_errors_are_counted() -> None:
    dead = f"redis://{LOOPBACK}:{free_port()}/0"
    with override_settings(REDIS_POOL={"url": dead, "publish_stats": False}):
        with pytest.raises(Exception, match="Connection refused"):
            get_redis().ping()
        stats = pool_stats()
        assert stats.errors >= 1
        assert (stats.created, stats.open, stats.in_use) == (0, 0, 0)
        assert stats.checkouts == stats.releases  # the failed checkout went back


def test_reading_stats_changes_nothing(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        pool = get_pool()
        before = pool_stats()
        assert (before.created, before.checkouts) == (0, 0)
        for _ in range(3):
            pool.stats()
        assert fresh_server.clients_named("redis_pool:") == []  # no connection made
        get_redis().ping()
        first, second = pool_stats(), pool_stats()
        assert first == second
        assert (first.created, first.checkouts) == (1, 1)


def test_stats_are_plain_json_ready_data(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        get_redis().ping()
        stats = pool_stats()
        assert isinstance(stats, PoolStats)
        assert dataclasses.is_dataclass(stats)
        data = json.loads(json.dumps(stats.as_dict()))
        assert set(data) == FIELDS
        for name in ("wait", "hold", "connect"):
            assert set(data[name]) == TIMING_FIELDS
        assert data["pid"] == stats.pid
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.in_use = 3  # type: ignore[misc]


@pytest.mark.parametrize("pool_timeout", [2.0, None], ids=["blocking", "plain"])
def test_counts_are_exact_under_threads(fresh_server: RedisServer, pool_timeout: Any) -> None:
    threads, per_thread = 12, 150
    options = settings_for(fresh_server, pool_timeout=pool_timeout, max_connections=16)
    with override_settings(REDIS_POOL=options):
        client = get_redis()
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def work() -> None:
            try:
                start.wait(5)
                for _ in range(per_thread):
                    client.incr("n")
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert errors == []
        assert int(client.get("n") or 0) == threads * per_thread
        stats = pool_stats()
        total = threads * per_thread + 1  # + the GET
        assert (stats.checkouts, stats.releases, stats.in_use) == (total, total, 0)
        assert stats.hold.count == total
        assert 1 <= stats.high_water <= 16
        assert stats.open == stats.created == len(fresh_server.clients_named("redis_pool:"))


# -- leak detection ------------------------------------------------------------------------


def _check_out_and_forget(pool: Any) -> Any:
    return pool.get_connection()


def test_no_stack_is_captured_without_a_threshold(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=settings_for(fresh_server)):
        pool = get_pool()
        connection = _check_out_and_forget(pool)
        try:
            assert connection._rp_stack is None
            assert pool_stats().leak_detection_threshold is None
        finally:
            pool.release(connection)


@pytest.mark.parametrize("pool_timeout", [2.0, None], ids=["blocking", "plain"])
def test_a_leaked_connection_is_logged_once_with_its_stack(
    fresh_server: RedisServer, caplog: pytest.LogCaptureFixture, pool_timeout: Any
) -> None:
    caplog.set_level(logging.INFO, logger="redis_pool.stats.leaks")
    options = settings_for(fresh_server, leak_detection_threshold=0.2, pool_timeout=pool_timeout)
    with override_settings(REDIS_POOL=options):
        pool = get_pool()
        get_redis().ping()  # a connection made: the monitor thread runs
        connection = _check_out_and_forget(pool)
        try:
            warnings = wait_for(
                lambda: [r for r in caplog.records if r.levelno == logging.WARNING],
                5,
                "the leak warning",
            )
            message = warnings[0].getMessage()
            assert "Possible connection leak in Redis pool 'default'" in message
            assert "leak_detection_threshold=0.2 s" in message
            assert "_check_out_and_forget" in message  # where it was checked out
            assert "test_stats.py" in message
            assert "redis/connection.py" not in message.splitlines()[-2]
            time.sleep(0.5)  # more scans pass: still reported once
            assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
            assert pool_stats().leaks == 1
        finally:
            pool.release(connection)
        wait_for(
            lambda: any("was returned after" in r.getMessage() for r in caplog.records),
            5,
            "the note that it came back",
        )
        assert pool_stats().leaks == 1


@pytest.mark.parametrize("pool_timeout", [2.0, None], ids=["blocking", "plain"])
def test_a_long_hold_returned_before_any_scan_is_reported(
    fresh_server: RedisServer, caplog: pytest.LogCaptureFixture, pool_timeout: Any
) -> None:
    caplog.set_level(logging.INFO, logger="redis_pool.stats.leaks")
    options = settings_for(fresh_server, leak_detection_threshold=5, pool_timeout=pool_timeout)
    with override_settings(REDIS_POOL=options):
        pool = get_pool()
        connection = _check_out_and_forget(pool)
        connection._rp_out -= 10  # as if held for 10 s: no scan could have seen it yet
        pool.release(connection)
        records = wait_for(
            lambda: [r for r in caplog.records if "was held for" in r.getMessage()],
            5,
            "the late leak warning",
        )
        assert "_check_out_and_forget" in records[0].getMessage()
        assert records[0].levelno == logging.WARNING
        assert pool_stats().leaks == 1


def test_leak_detection_costs_nothing_on_the_default_path() -> None:
    config, _ = parse_alias("default", {"url": "redis://127.0.0.1:1/0"})
    assert config is not None
    pool = build_pool(config)
    assert not pool.counters.capture_stacks
    assert pool.counters.leak_limit == float("inf")
    assert type(pool.pool).__name__ == "CountingFairLifoQueue"  # not the stack-capturing one


def test_capture_is_a_cheap_frame_walk() -> None:
    stack = capture()
    assert stack[0][2] == "test_capture_is_a_cheap_frame_walk"
    assert all(isinstance(line, int) for _, line, _ in stack)


def test_blocking_pool_serves_waiters_first_come_first_served(fresh_server: RedisServer) -> None:
    options = settings_for(fresh_server, max_connections=1, pool_timeout=5)
    with override_settings(REDIS_POOL=options):
        pool = get_pool()
        held = pool.get_connection()
        order: list[str] = []

        def waiter(name: str) -> None:
            connection = pool.get_connection()
            order.append(name)
            pool.release(connection)

        threads = []
        for count, name in enumerate(["first", "second"], start=1):
            thread = threading.Thread(target=waiter, args=(name,))
            thread.start()
            threads.append(thread)
            wait_for(lambda n=count: pool_stats().waiting == n, 5, f"{name} to wait")
        # The thread returning the connection asks again at once: it must queue behind the
        # two waiters instead of taking its connection straight back.
        pool.release(held)
        again = pool.get_connection()
        order.append("returner")
        pool.release(again)
        for thread in threads:
            thread.join(5)
        assert order == ["first", "second", "returner"]
        stats = pool_stats()
        assert (stats.waits, stats.wait_timeouts, stats.in_use, stats.checkouts) == (3, 0, 0, 4)
        assert stats.high_water == 1


def test_a_connection_broken_mid_command_counts_one_error(fresh_server: RedisServer) -> None:
    # The server closes our idle connection; the next command fails on it, redis-py's retry
    # reconnects, and the caller sees nothing: the stats still record the broken connection.
    with override_settings(REDIS_POOL={"url": fresh_server.url, "publish_stats": False}):
        client = get_redis()
        client.ping()
        [ours] = fresh_server.clients_named("redis_pool:")
        fresh_server.command("CLIENT", "KILL", "ID", ours["id"])
        assert client.ping() is True
        stats = pool_stats()
        assert (stats.errors, stats.created, stats.closed, stats.open) == (1, 2, 1, 1)
