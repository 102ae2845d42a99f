"""Views for the debug-toolbar tests: sync and async, each running known Redis commands."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from redis_pool import aget_redis, get_pool, get_redis
from redis_pool.contrib.debug_toolbar import recording

PAGE = "<html><body>{}</body></html>"
ALIAS = "default"

# Set by the concurrency tests: both requests reach each step before either goes on, so
# their commands interleave while both record.
steps: dict[str, Any] = {}


def commands(request: HttpRequest) -> HttpResponse:
    client = get_redis(ALIAS)
    held = get_pool(ALIAS).get_connection()  # so that "in use" shows another borrower
    try:
        client.set("greeting", "x" * 500)
        client.get("greeting")
        with client.pipeline() as pipe:
            pipe.incr("counter").expire("counter", 60)
            pipe.execute()
    finally:
        get_pool(ALIAS).release(held)
    return HttpResponse(PAGE.format(recording.installed()))


def plain(request: HttpRequest) -> HttpResponse:
    client = get_redis(ALIAS)
    client.set("greeting", "hello")
    client.get("greeting")
    return HttpResponse(PAGE.format(recording.installed()))


async def acommands(request: HttpRequest) -> HttpResponse:
    client = aget_redis(ALIAS)
    await client.set("agreeting", "hello")
    await client.get("agreeting")
    async with client.pipeline(transaction=False) as pipe:
        pipe.incr("acounter").expire("acounter", 60)
        await pipe.execute()
    return HttpResponse(PAGE.format(recording.installed()))


def tagged(request: HttpRequest, tag: str) -> HttpResponse:
    client = get_redis(ALIAS)
    barrier: threading.Barrier = steps["barrier"]
    for step in range(3):
        barrier.wait(timeout=10)
        client.set(f"{tag}:{step}", step)
    return HttpResponse(PAGE.format(tag))


async def atagged(request: HttpRequest, tag: str) -> HttpResponse:
    client = aget_redis(ALIAS)
    for step in range(3):
        steps[tag] = step
        # Wait for the other request to reach the same step: the tasks interleave.
        while any(value < step for value in steps.values() if isinstance(value, int)):
            await asyncio.sleep(0.001)
        await client.set(f"{tag}:{step}", step)
    return HttpResponse(PAGE.format(tag))


def secrets(request: HttpRequest) -> HttpResponse:
    client = get_redis(ALIAS)
    password = steps["password"]
    client.acl_setuser("panel-user", enabled=True, passwords=[f"+{password}"], commands=["+@all"],
                       keys=["*"], channels=["*"])  # fmt: skip
    client.execute_command("AUTH", "panel-user", password)
    client.execute_command("HELLO", "3", "AUTH", "panel-user", password, "SETNAME", "shown")
    client.config_set("requirepass", password)
    client.execute_command("MIGRATE", "127.0.0.1", "1", "", "0", "100", "AUTH2", "u", password,
                           "KEYS", "absent")  # fmt: skip
    client.execute_command("MIGRATE", "127.0.0.1", "1", "", "0", "100", "AUTH", password,
                           "KEYS", "absent")  # fmt: skip
    return HttpResponse(PAGE.format("done"))


urlpatterns = [
    path("commands/", commands),
    path("plain/", plain),
    path("acommands/", acommands),
    path("tagged/<str:tag>/", tagged),
    path("atagged/<str:tag>/", atagged),
    path("secrets/", secrets),
    # Not debug_toolbar_urls(): it returns nothing unless DEBUG was on at import.
    path("__debug__/", include("debug_toolbar.urls")),
]
