from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from redis import Redis
from redis.exceptions import RedisError

from demoapp import counters


def _redis(request: HttpRequest) -> Redis:
    # Attached lazily by redis_pool.middleware.RedisPoolMiddleware; HttpRequest's stubs
    # don't know about it.
    client: Redis = request.redis  # type: ignore[attr-defined]
    return client


def _client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR") or "unknown"


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def index(request: HttpRequest) -> HttpResponse:
    """No Redis at all: the baseline for benchmarks."""
    return HttpResponse("django-redis-pool demo\n", content_type="text/plain")


@never_cache
def hits(request: HttpRequest) -> JsonResponse:
    count = _redis(request).incr(counters.HITS_KEY)
    counters.record_client(_client_ip(request))
    return JsonResponse({"hits": count})


@never_cache
def ratelimit(request: HttpRequest) -> JsonResponse:
    """Fixed-window limiter: at most DEMO_RATELIMIT_LIMIT requests per IP per window."""
    limit: int = settings.DEMO_RATELIMIT_LIMIT
    window: int = settings.DEMO_RATELIMIT_WINDOW
    now = time.time()
    # The window number is part of the key, so each window starts from zero without a reset;
    # EXPIRE just garbage-collects old windows.  (Web-server clocks must roughly agree.)
    key = f"demo:ratelimit:{_client_ip(request)}:{int(now // window)}"
    pipe = _redis(request).pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, window + 1)
    count, _ = pipe.execute()
    allowed = count <= limit
    reset_in = max(1, math.ceil(window - now % window))
    response = JsonResponse(
        {
            "allowed": allowed,
            "limit": limit,
            "remaining": max(0, limit - count),
            "reset": reset_in,
            "window": window,
        },
        status=200 if allowed else 429,
    )
    response["RateLimit-Limit"] = str(limit)
    response["RateLimit-Remaining"] = str(max(0, limit - count))
    response["RateLimit-Reset"] = str(reset_in)
    if not allowed:
        response["Retry-After"] = str(reset_in)
    return response


@never_cache
def incr_get(request: HttpRequest) -> HttpResponse:
    """Two round trips (INCR then GET) on one key; benchmarks hit this."""
    client = _redis(request)
    client.incr(counters.INCR_GET_KEY)
    value = client.get(counters.INCR_GET_KEY)
    return HttpResponse(_text(value), content_type="text/plain")


def _squares(n: int) -> list[int]:
    return [i * i for i in range(n)]


@never_cache
def cached(request: HttpRequest) -> JsonResponse:
    """A page built from Django's cache (on the alias's pool): computed once per 30 s."""
    built = cache.get_or_set(
        "demo:squares", lambda: {"at": time.time(), "squares": _squares(50)}, 30
    )
    return JsonResponse({"built_at": built["at"], "total": sum(built["squares"])})


@never_cache
def session(request: HttpRequest) -> JsonResponse:
    """A per-visitor counter in the session (the cache session engine: the alias's pool)."""
    visits = int(request.session.get("visits", 0)) + 1
    request.session["visits"] = visits
    return JsonResponse({"visits": visits})


@never_cache
def health(request: HttpRequest) -> HttpResponse:
    try:
        _redis(request).ping()
    except RedisError as exc:
        # Short and fixed: no connection details (host, password) leak to the client.
        return HttpResponse(
            f"redis unavailable ({type(exc).__name__})\n", status=503, content_type="text/plain"
        )
    return HttpResponse("ok\n", content_type="text/plain")
