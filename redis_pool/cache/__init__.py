"""Django's cache framework on a ``REDIS_POOL`` alias's pool.

``CACHES = {"default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "cache"}}``:
``LOCATION`` names the alias; every thread's backend instance and ``get_redis()`` share that
alias's one pool (docs/cache.md).
"""

from __future__ import annotations

from redis_pool.cache.backend import RedisCache
from redis_pool.cache.serializer import RedisSerializer

__all__ = ["RedisCache", "RedisSerializer"]
