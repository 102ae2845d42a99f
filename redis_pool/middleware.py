"""``request.redis`` and ``request.aredis``: the alias's clients, attached lazily to requests.

``request.redis`` is the shared sync client, for sync views; ``request.aredis`` is the
``redis.asyncio`` client of the event loop serving the request, for async views.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject

from redis_pool.aio import aget_redis
from redis_pool.config.settings import conf
from redis_pool.registry import get_redis


class RedisPoolMiddleware:
    """Sets ``request.redis`` and ``request.aredis``; unread, each costs one small object."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: (
            Callable[[HttpRequest], HttpResponseBase]
            | Callable[[HttpRequest], Awaitable[HttpResponseBase]]
        ),
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Mark the class async-capable so Django awaits __call__ directly.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        self._attach(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self._attach(request)
        return await self.get_response(request)  # type: ignore[misc,no-any-return]

    @staticmethod
    def _attach(request: HttpRequest) -> None:
        alias = conf.REDIS_POOL_MIDDLEWARE_ALIAS
        # Lazy so a misconfigured alias only fails the views that use Redis.
        request.redis = SimpleLazyObject(lambda: get_redis(alias))  # type: ignore[attr-defined]
        # Resolved on first use, in the coroutine that uses it: that fixes the loop.
        request.aredis = SimpleLazyObject(lambda: aget_redis(alias))  # type: ignore[attr-defined]
