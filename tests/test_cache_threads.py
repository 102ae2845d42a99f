"""16 threads on max_connections=2: one pool, at most 2 server connections, no error
(Django's own backend, measured in the same test, makes a pool and a connection per thread)."""

from __future__ import annotations

from django.test import override_settings

from benchmarks.bench_cache_threads import BACKENDS, LIMIT, measure
from redis_pool import pool_stats
from tests.redis_server import RedisServer

OURS = "redis_pool.cache.RedisCache (blocking, pool_timeout 5)"
DJANGOS = "django RedisCache (plain pool)"


def test_sixteen_threads_share_one_bounded_pool(fresh_server: RedisServer) -> None:
    aliases = {
        "default": {"url": fresh_server.url},
        "threads": {"url": fresh_server.url, "max_connections": LIMIT, "pool_timeout": 5},
    }
    with override_settings(REDIS_POOL=aliases):
        ours = measure(BACKENDS[OURS], fresh_server.url, threads=16, ops=50)
        stats = pool_stats("threads")
        theirs = measure(BACKENDS[DJANGOS], fresh_server.url, threads=16, ops=20)
    assert ours["failed_ops"] == 0, ours["errors"]
    assert ours["pools"] == 1
    assert ours["connections_opened"] <= LIMIT
    assert ours["peak_connections"] <= LIMIT
    assert stats.created <= LIMIT
    assert stats.checkouts >= 16 * 50 * 2  # every cache op is one of the alias's checkouts
    # The contrast the backend exists for: Django's makes one pool per thread.
    assert theirs["pools"] == 16
    assert theirs["connections_opened"] == 16
