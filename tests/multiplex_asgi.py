"""A Django ASGI app whose async views use ``request.aredis`` on an alias with
``"multiplex": True``: the registry gives each event loop one ``MultiplexedRedis``. Served by
uvicorn in tests/test_multiplex_uvicorn.py; ``REDIS_URL`` comes from the environment.
Settings module and URLconf in one."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from redis_pool import MultiplexedRedis
from tests.base_settings import *  # noqa: F403  (a settings module: Django reads the names)

ROOT_URLCONF = __name__
REDIS_POOL = {
    "url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "multiplex": True,
    "max_connections": 8,
    "pool_timeout": 5,
}


async def echo(request: HttpRequest) -> HttpResponse:
    """SET a token, yield, GET it back, and BLPOP now and then (a dedicated connection)."""
    token = request.GET["v"]
    client = request.aredis  # type: ignore[attr-defined]
    await client.set(f"mx:{token}", token, ex=60)
    await asyncio.sleep(0)
    got = await client.get(f"mx:{token}")
    if token.endswith("7"):
        await client.blpop([f"mx:empty:{token}"], timeout=0.01)
    return HttpResponse(got or b"")


async def stats(request: HttpRequest) -> JsonResponse:
    client = request.aredis  # type: ignore[attr-defined]
    figures: dict[str, Any] = client.stats().as_dict()
    figures["client_class"] = type(client._wrapped).__name__  # behind the lazy object
    figures["is_multiplexed"] = isinstance(client._wrapped, MultiplexedRedis)
    return JsonResponse(figures)


async def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


urlpatterns = [
    path("echo/", echo),
    path("stats/", stats),
    path("untouched/", untouched),
]
