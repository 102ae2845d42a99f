"""Drop-ins for code written against django-redis."""

from __future__ import annotations

from typing import Any


def get_redis_connection(alias: str = "default", write: bool = True) -> Any:
    """django-redis's ``get_redis_connection()``: the raw client behind ``caches[alias]``.

    For a ``redis_pool.cache.RedisCache`` this is ``get_redis()`` of its ``REDIS_POOL``
    alias: the same pool as the cache. ``django_redis.get_redis_connection`` itself also
    works on our backend (it calls ``cache.client.get_client(write)``, which we provide).
    """
    from django.core.cache import caches

    cache = caches[alias]
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        raise NotImplementedError(
            f"caches[{alias!r}] ({type(cache).__name__}) has no raw Redis client; use "
            "redis_pool.cache.RedisCache or django-redis."
        )
    return client.get_client(write)
