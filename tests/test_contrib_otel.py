"""redis_pool.contrib.opentelemetry against a real redis-server, read back with the
OpenTelemetry SDK's in-memory metric reader: the values are our pool_stats(), every series
of our pools is named by its alias, sync and async pools, and redis-py's own connection
metrics come through under the alias too."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

pytest.importorskip("opentelemetry.sdk.metrics")

from django.test import override_settings
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from redis_pool import aget_redis, get_pool, get_redis, pool_stats
from redis_pool.aio import async_pool_stats
from redis_pool.contrib.opentelemetry import alias_of, instrument, uninstrument
from redis_pool.pools.base import observability_id
from tests.helpers import holding
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
POOL = "db.client.connection.pool.name"
REDIS_PY = (("db.system", "redis"), ("redis.client.library", f"redis-py:v{redis.__version__}"))
Points = dict[tuple[str, str, str, tuple[tuple[str, Any], ...]], Any]


@pytest.fixture
def reader() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    uninstrument()
    provider.shutdown()


def collect(reader: InMemoryMetricReader) -> Points:
    """Every data point: (scope, metric, pool name, other attributes) -> value or
    (count, sum) of a histogram."""
    found: Points = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    pool = str(attributes.pop(POOL, ""))
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)  # type: ignore[attr-defined]
                    key = (scope.scope.name, metric.name, pool, tuple(sorted(attributes.items())))
                    found[key] = value
    return found


def ours(points: Points, metric: str, pool: str, **extra: str) -> Any:
    attributes = tuple(sorted({"db.system.name": "redis", **extra}.items()))
    return points[("redis_pool", metric, pool, attributes)]


def settings(server: RedisServer, **options: Any) -> dict[str, Any]:
    base = {"url": server.url, "publish_stats": False, **options}
    return {"default": base, "other": {**base, "url": server.url.replace("/0", "/1")}}


def expect_ours(points: Points, pool: str, rows: list[Any]) -> None:
    """Our instruments of ``pool`` say what the PoolStats ``rows`` (sync + async) add up to."""

    def total(name: str) -> int:
        return sum(getattr(row, name) for row in rows)

    assert ours(points, "db.client.connection.max", pool) == total("max_connections")
    assert ours(points, "db.client.connection.pending_requests", pool) == total("waiting")
    assert ours(points, "db.client.connection.timeouts", pool) == total("wait_timeouts")
    used = ours(
        points, "db.client.connection.count", pool, **{"db.client.connection.state": "used"}
    )
    idle = ours(
        points, "db.client.connection.count", pool, **{"db.client.connection.state": "idle"}
    )
    assert (used, idle) == (total("in_use"), total("idle"))
    count, seconds = ours(points, "db.client.connection.use_time", pool)
    assert count == sum(row.hold.count for row in rows)
    assert seconds * 1000 == pytest.approx(sum(row.hold.total_ms for row in rows), abs=0.01)


def test_sync_pools_values_equal_pool_stats(
    reader: tuple[InMemoryMetricReader, MeterProvider], fresh_server: RedisServer
) -> None:
    memory, provider = reader
    with override_settings(REDIS_POOL=settings(fresh_server, max_connections=4, pool_timeout=0.05)):
        instrument(provider)
        for _ in range(10):
            get_redis().incr("n")
        get_redis("other").ping()
        with holding(get_pool(), 4), pytest.raises(Exception, match="exhausted"):
            get_redis().ping()
        with holding(get_pool(), 2):
            points = collect(memory)
            stats = pool_stats()
        assert (stats.in_use, stats.idle, stats.wait_timeouts) == (2, 2, 1)
        expect_ours(points, "default", [stats])
        expect_ours(points, "other", [pool_stats("other")])
        # A second collection: only what happened since (cumulative totals still equal).
        for _ in range(3):
            get_redis().incr("n")
        points = collect(memory)
        expect_ours(points, "default", [pool_stats()])


@pytest.mark.parametrize("timeout", [None, 1.0], ids=["plain", "blocking"])
def test_redis_py_metrics_come_named_by_alias(
    reader: tuple[InMemoryMetricReader, MeterProvider],
    fresh_server: RedisServer,
    timeout: float | None,
) -> None:
    pytest.importorskip("redis.observability")  # redis-py 7.4 and later
    memory, provider = reader

    async def traffic() -> None:
        for _ in range(4):
            await aget_redis().incr("a")
        await aget_redis("other").ping()
        points = collect(memory)
        rows = [pool_stats(), *async_pool_stats()]
        key = ("redis-py", "db.client.connection.create_time", "default", REDIS_PY)
        assert points[key][0] == sum(row.created for row in rows) == 2
        # redis-py's blocking pools time every checkout (we time those that waited); its
        # plain pools time none.
        key = ("redis-py", "db.client.connection.wait_time", "default", REDIS_PY)
        if timeout is not None:
            assert points[key][0] == sum(row.checkouts for row in rows) == 3 + 4
        else:
            assert key not in points
        named = {pool for (_, _, pool, _) in points if pool}
        assert {"default", "other"} <= named
        # No pool of ours left under redis-py's name for it (host:port_redis_pool:<alias>:<id>);
        # anything else is a pool that is not ours (e.g. earlier tests' pools, finalized now).
        assert not any("redis_pool:" in name for name in named)
        # redis-py's count of our pools is replaced by ours.
        assert not any(
            scope == "redis-py" and metric == "db.client.connection.count" and pool in named
            for (scope, metric, pool, _) in points
            if pool in ("default", "other")
        )

    with override_settings(REDIS_POOL=settings(fresh_server, pool_timeout=timeout)):
        instrument(provider)
        for _ in range(3):
            get_redis().incr("n")
        asyncio.run(traffic())


def test_no_phantom_pool(
    reader: tuple[InMemoryMetricReader, MeterProvider], fresh_server: RedisServer
) -> None:
    pytest.importorskip("redis.observability")  # the phantom shows in redis-py's metrics
    memory, provider = reader
    instrument(provider)
    with override_settings(REDIS_POOL=settings(fresh_server)):
        get_redis().ping()
        points = collect(memory)
    # Pools of this test's server (earlier tests' pools may be finalized meanwhile).
    pools = {
        pool
        for (_, metric, pool, _) in points
        if metric == "db.client.connection.count"
        and (pool in ("default", "other") or f":{fresh_server.port}_" in pool)
    }
    assert pools == {"default", "other"}


@pytest.mark.parametrize("timeout", [None, 1.0], ids=["plain", "blocking"])
def test_async_pools_add_to_the_alias(
    reader: tuple[InMemoryMetricReader, MeterProvider],
    fresh_server: RedisServer,
    timeout: float | None,
) -> None:
    memory, provider = reader

    async def traffic() -> None:
        for _ in range(6):
            await aget_redis().incr("a")
        async with aget_redis().pipeline() as pipe:
            pipe.incr("a")
            connection = await aget_redis().connection_pool.get_connection()
            try:
                points = collect(memory)
                rows = [pool_stats(), *async_pool_stats()]
                assert rows[1].in_use == 1
                expect_ours(points, "default", rows)
            finally:
                await aget_redis().connection_pool.release(connection)

    with override_settings(REDIS_POOL=settings(fresh_server, pool_timeout=timeout)):
        instrument(provider)
        get_redis().incr("s")
        asyncio.run(traffic())


def test_a_pool_built_before_instrument_counts_from_then(
    reader: tuple[InMemoryMetricReader, MeterProvider], fresh_server: RedisServer
) -> None:
    memory, provider = reader
    with override_settings(REDIS_POOL=settings(fresh_server)):
        for _ in range(5):
            get_redis().incr("n")
        before = pool_stats().hold.count
        instrument(provider)
        for _ in range(3):
            get_redis().incr("n")
        count, _ = ours(collect(memory), "db.client.connection.use_time", "default")
        assert count == pool_stats().hold.count - before == 3


def test_without_redis_py_bridge_ours_only(
    reader: tuple[InMemoryMetricReader, MeterProvider], fresh_server: RedisServer
) -> None:
    memory, provider = reader
    with override_settings(REDIS_POOL=settings(fresh_server)):
        instrument(provider, redis_py=False)
        get_redis().incr("n")
        points = collect(memory)
        expect_ours(points, "default", [pool_stats()])
    assert {scope for (scope, _, _, _) in points} == {"redis_pool"}


def test_uninstrument_stops_everything(
    reader: tuple[InMemoryMetricReader, MeterProvider], fresh_server: RedisServer
) -> None:
    memory, provider = reader
    with override_settings(REDIS_POOL=settings(fresh_server)):
        instrument(provider)
        get_redis().incr("n")
        uninstrument()
        assert get_pool().counters.hold_log is None
        get_redis().incr("n")
        points = collect(memory)
    assert not any(scope == "redis_pool" and pool for (scope, _, pool, _) in points if _)


def test_alias_of_a_pool_name() -> None:
    assert alias_of(f"127.0.0.1:6379_{observability_id('default')}") == "default"
    assert alias_of(f"::1:6379_{observability_id('a_b:c]')}") == "a_b:c]"
    assert alias_of("127.0.0.1:6379_9bbae761") is None  # redis-py's own name: not ours
    assert alias_of("127.0.0.1:6379") is None


def test_a_pool_finalized_anywhere_records_without_deadlock(
    reader: tuple[InMemoryMetricReader, MeterProvider], fresh_server: RedisServer
) -> None:
    """redis-py records from a pool's ``__del__``, which a garbage collection may run while
    this thread holds any lock, ours included (it did, inside the scan of the async pools:
    the naming looked pools up under that lock and the thread deadlocked)."""
    from redis_pool import aio
    from redis_pool.pools.sync import build_pool
    from redis_pool.registry import get_config

    memory, provider = reader
    with override_settings(REDIS_POOL=settings(fresh_server, pool_timeout=1.0)):
        pool: Any = build_pool(get_config())
        pool.make_connection()  # no network
        instrument(provider)  # so the first sight of this pool is its __del__

        def finalize_under_the_lock() -> None:
            nonlocal pool
            with aio._lock:
                del pool
                gc.collect()  # BlockingConnectionPool.__del__ records the count

        worker = threading.Thread(target=finalize_under_the_lock, daemon=True)
        worker.start()
        worker.join(5)
        if worker.is_alive():
            aio._lock = threading.Lock()  # the stuck thread holds the old one: let the rest run
            pytest.fail("deadlocked in a pool's __del__")
        collect(memory)


def test_without_the_extra_the_import_names_it() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "try:\n    import redis_pool.contrib.opentelemetry\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == (
        "redis_pool.contrib.opentelemetry needs the OpenTelemetry API: install the extra "
        "with pip install 'django-redis-pool[otel]'."
    ), result.stderr
