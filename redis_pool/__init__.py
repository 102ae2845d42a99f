"""django-redis-pool: one correctly configured Redis connection pool per alias.

Importing this package has no side effects: no settings access, no network. It does load
the monitor, which subscribes to the pools' hook so that a process's first connection starts
the thread that publishes its stats (``redis_pool.pools.hooks``).
"""

from __future__ import annotations

from redis_pool.aio import aget_redis, aget_replica
from redis_pool.exceptions import AliasNotFound, ClusterUnavailableError, PoolExhaustedError
from redis_pool.multiplex import MultiplexedRedis, MultiplexStats
from redis_pool.observability import monitor as _monitor  # noqa: F401  (subscribes to hooks)
from redis_pool.registry import (
    get_pool,
    get_redis,
    get_replica,
    node_pools,
    node_stats,
    pool_stats,
)
from redis_pool.stats.counters import PoolStats, Timing

__all__ = [
    "AliasNotFound",
    "ClusterUnavailableError",
    "MultiplexStats",
    "MultiplexedRedis",
    "PoolExhaustedError",
    "PoolStats",
    "Timing",
    "aget_redis",
    "aget_replica",
    "get_pool",
    "get_redis",
    "get_replica",
    "node_pools",
    "node_stats",
    "pool_stats",
]
