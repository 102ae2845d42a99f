"""A Django ASGI app whose async views share one ``MultiplexedRedis`` per event loop, built
on the alias's async pool (what ``"multiplex": True`` will give ``request.aredis``). Served
by uvicorn in tests/test_multiplex_uvicorn.py; ``REDIS_URL`` comes from the environment.
Settings module and URLconf in one."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from redis_pool import aget_redis
from redis_pool.multiplex import MultiplexedRedis
from tests.base_settings import *  # noqa: F403  (a settings module: Django reads the names)

ROOT_URLCONF = __name__
REDIS_POOL = {
    "url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "max_connections": 8,
    "pool_timeout": 5,
}

_clients: dict[int, MultiplexedRedis] = {}  # by id(loop): one event loop under uvicorn


def shared() -> MultiplexedRedis:
    loop = asyncio.get_running_loop()
    client = _clients.get(id(loop))
    if client is None:
        client = _clients[id(loop)] = MultiplexedRedis(aget_redis().connection_pool)
    return client


async def echo(request: HttpRequest) -> HttpResponse:
    """SET a token, yield, GET it back, and BLPOP now and then (a dedicated connection)."""
    token = request.GET["v"]
    client = shared()
    await client.set(f"mx:{token}", token, ex=60)
    await asyncio.sleep(0)
    got = await client.get(f"mx:{token}")
    if token.endswith("7"):
        await client.blpop([f"mx:empty:{token}"], timeout=0.01)
    return HttpResponse(got or b"")


async def stats(request: HttpRequest) -> JsonResponse:
    figures: dict[str, Any] = shared().stats().as_dict()
    return JsonResponse(figures)


async def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


urlpatterns = [
    path("echo/", echo),
    path("stats/", stats),
    path("untouched/", untouched),
]
