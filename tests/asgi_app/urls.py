"""Async (and one sync) views over ``request.aredis`` / ``aget_redis()``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from redis_pool import aget_redis, pool_stats
from redis_pool.aio import async_pool_stats

# Every async pool a view has used, so the at-exit report can read their final counters.
seen_pools: list[Any] = []


def _note(client: Any) -> None:
    if client.connection_pool not in seen_pools:
        seen_pools.append(client.connection_pool)


async def aincr(request: HttpRequest) -> HttpResponse:
    client = request.aredis  # type: ignore[attr-defined]
    _note(client)
    return HttpResponse(str(await client.incr("asgi:hits")))


async def aecho(request: HttpRequest) -> HttpResponse:
    """SET, yield to other requests, GET: a connection shared between tasks would cross
    the replies."""
    token = request.GET["v"]
    client = aget_redis()
    _note(client)
    await client.set(f"asgi:echo:{token}", token, ex=60)
    await asyncio.sleep(0)
    got = await client.get(f"asgi:echo:{token}")
    return HttpResponse(got.decode() if got is not None else "")


async def ahold(request: HttpRequest) -> HttpResponse:
    """Keeps one connection checked out for a while (WATCH pins it), so concurrent
    requests queue for the pool."""
    key = f"asgi:held:{request.GET['v']}"
    client = request.aredis  # type: ignore[attr-defined]
    _note(client)
    async with client.pipeline() as pipe:
        await pipe.watch(key)
        await asyncio.sleep(float(request.GET.get("s", "0.02")))
        pipe.multi()
        pipe.incr(key)
        (value,) = await pipe.execute()
    return HttpResponse(str(value))


async def astats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "pid": os.getpid(),
            "async": [stats.as_dict() for stats in async_pool_stats()],
            "sync": pool_stats().as_dict(),
        }
    )


async def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("untouched")


def sync_incr(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.redis.incr("asgi:sync")))  # type: ignore[attr-defined]


urlpatterns = [
    path("aincr/", aincr),
    path("aecho/", aecho),
    path("ahold/", ahold),
    path("astats/", astats),
    path("untouched/", untouched),
    path("sync_incr/", sync_incr),
]
