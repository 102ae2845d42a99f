"""pytest plugin (``-p redis_pool_substitute``): redis-py's pool classes rebound to
redis_pool's, so redis-py's own tests exercise ours. Imported under this top-level name
because the suite it runs has a ``tests`` package of its own."""

from __future__ import annotations

import redis
import redis.asyncio
import redis.asyncio.client
import redis.asyncio.connection
import redis.client
import redis.connection
from django.conf import settings

if not settings.configured:
    settings.configure()  # the pools import Django's settings object; nothing reads it here

from redis_pool.pools.asyncio import AsyncBlockingRedisPool, AsyncRedisPool
from redis_pool.pools.sync import BlockingRedisPool, RedisPool

SUBSTITUTES = {
    (redis, "ConnectionPool"): RedisPool,
    (redis, "BlockingConnectionPool"): BlockingRedisPool,
    (redis.client, "ConnectionPool"): RedisPool,
    (redis.connection, "ConnectionPool"): RedisPool,
    (redis.connection, "BlockingConnectionPool"): BlockingRedisPool,
    (redis.asyncio, "ConnectionPool"): AsyncRedisPool,
    (redis.asyncio, "BlockingConnectionPool"): AsyncBlockingRedisPool,
    (redis.asyncio.client, "ConnectionPool"): AsyncRedisPool,
    (redis.asyncio.connection, "ConnectionPool"): AsyncRedisPool,
    (redis.asyncio.connection, "BlockingConnectionPool"): AsyncBlockingRedisPool,
}

for (module, name), ours in SUBSTITUTES.items():
    if hasattr(module, name):
        setattr(module, name, ours)


def pytest_report_header() -> str:
    return "redis_pool: redis-py's pool classes rebound to " + ", ".join(
        sorted({cls.__name__ for cls in SUBSTITUTES.values()})
    )
