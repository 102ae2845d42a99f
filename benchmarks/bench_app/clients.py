"""Client factories the views and the no-HTTP measurement share, so both time the same code."""

from __future__ import annotations

import redis
from django.conf import settings

# The limit: what a careful hand-written module does (redis-py defaults, one shared pool).
MODULE_POOL = redis.ConnectionPool.from_url(settings.REDIS_URL)
MODULE_CLIENT = redis.Redis(connection_pool=MODULE_POOL)


def new_client() -> redis.Redis:
    """The anti-pattern: a client, and so a pool and a connection, per request."""
    return redis.Redis.from_url(settings.REDIS_URL)
