"""django-redis-pool: one correctly configured Redis connection pool per alias.

Importing this package has no side effects: no settings access, no network.
"""

from __future__ import annotations

from redis_pool.aio import aget_redis, aget_replica
from redis_pool.exceptions import AliasNotFound, ClusterUnavailableError, PoolExhaustedError
from redis_pool.registry import (
    get_pool,
    get_redis,
    get_replica,
    node_pools,
    node_stats,
    pool_stats,
)
from redis_pool.stats import PoolStats, Timing

__all__ = [
    "AliasNotFound",
    "ClusterUnavailableError",
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
