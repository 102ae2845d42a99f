"""One view per way of getting a client; each does the same INCR + GET on its own key."""

from __future__ import annotations

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from redis import Redis

from benchmarks.bench_app.clients import MODULE_CLIENT, new_client
from redis_pool import get_redis


def _incr_get(client: Redis, key: str) -> HttpResponse:
    client.incr(key)
    value = client.get(key)
    return HttpResponse(value or b"", content_type="text/plain")


def noredis(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"0", content_type="text/plain")


def new(request: HttpRequest) -> HttpResponse:
    client = new_client()
    try:
        return _incr_get(client, "bench:new")
    finally:
        client.close()


def module(request: HttpRequest) -> HttpResponse:
    return _incr_get(MODULE_CLIENT, "bench:module")


def django_redis(request: HttpRequest) -> HttpResponse:
    from django_redis import get_redis_connection

    return _incr_get(get_redis_connection("django_redis"), "bench:django_redis")


def cache(request: HttpRequest) -> HttpResponse:
    # Django's RedisCache: incr() is EXISTS + INCRBY, so three commands, not two.
    backend = caches["default"]
    try:
        backend.incr("bench:cache")
    except ValueError:  # first request: incr() refuses a missing key
        backend.set("bench:cache", 1, timeout=None)
    return HttpResponse(str(backend.get("bench:cache")), content_type="text/plain")


def request_redis(request: HttpRequest) -> HttpResponse:
    return _incr_get(request.redis, "bench:request_redis")  # type: ignore[attr-defined]


def get_redis_view(request: HttpRequest) -> HttpResponse:
    return _incr_get(get_redis(), "bench:get_redis")
