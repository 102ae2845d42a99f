"""Multiplexing: one auto-pipelined connection per event loop, shared by all its tasks.

``MultiplexedRedis(pool)`` is a ``redis.asyncio.Redis``; see docs/multiplexing.md.
"""

from __future__ import annotations

from redis_pool.multiplex.client import MultiplexedPipeline, MultiplexedRedis
from redis_pool.multiplex.connection import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PIPELINE_CHUNK,
    MultiplexedConnection,
)
from redis_pool.multiplex.routing import route
from redis_pool.multiplex.stats import MultiplexStats

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_PIPELINE_CHUNK",
    "MultiplexStats",
    "MultiplexedConnection",
    "MultiplexedPipeline",
    "MultiplexedRedis",
    "route",
]
