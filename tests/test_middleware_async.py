"""``request.aredis``: tested directly (AsyncRequestFactory) and end to end (AsyncClient)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, AsyncRequestFactory, Client, RequestFactory, override_settings
from django.utils.functional import SimpleLazyObject, empty

from redis_pool import aget_redis, aio, get_redis
from redis_pool.middleware import RedisPoolMiddleware
from tests.redis_server import RedisServer

pytestmark = pytest.mark.usefixtures("no_async_pools_survive")  # conftest.py


async def aincr_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(await request.aredis.incr("amw")))  # type: ignore[attr-defined]


async def untouched_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("untouched")


def test_async_view_gets_the_loops_client() -> None:
    middleware = RedisPoolMiddleware(aincr_view)
    request = AsyncRequestFactory().get("/")

    async def main() -> None:
        response = await middleware(request)
        assert response.content == b"1"
        lazy = request.aredis  # type: ignore[attr-defined]
        assert isinstance(lazy, SimpleLazyObject)
        assert isinstance(lazy, redis.asyncio.Redis)
        assert lazy._wrapped is aget_redis()

    asyncio.run(main())


def test_lazy_a_request_that_never_uses_it_builds_no_pool() -> None:
    middleware = RedisPoolMiddleware(untouched_view)
    request = AsyncRequestFactory().get("/")

    async def main() -> None:
        assert (await middleware(request)).content == b"untouched"
        assert request.aredis._wrapped is empty  # type: ignore[attr-defined]
        assert request.redis._wrapped is empty  # type: ignore[attr-defined]
        assert getattr(asyncio.get_running_loop(), aio._ATTR, None) is None

    asyncio.run(main())


def test_sync_view_keeps_request_redis_and_aredis_says_why_not() -> None:
    def view(request: HttpRequest) -> HttpResponse:
        assert request.redis._wrapped is empty  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match=r"sync code uses get_redis\(\)"):
            request.aredis.ping()  # type: ignore[attr-defined]
        return HttpResponse(str(request.redis.incr("smw")))  # type: ignore[attr-defined]

    request = RequestFactory().get("/")
    assert RedisPoolMiddleware(view)(request).content == b"1"
    assert request.redis._wrapped is get_redis()  # type: ignore[attr-defined]


def test_middleware_alias_setting() -> None:
    request = AsyncRequestFactory().get("/")

    async def main() -> None:
        await RedisPoolMiddleware(aincr_view)(request)
        assert request.aredis._wrapped is aget_redis("other")  # type: ignore[attr-defined]

    with override_settings(REDIS_POOL_MIDDLEWARE_ALIAS="other"):
        asyncio.run(main())
    assert get_redis("other").get("amw") == b"1"
    assert get_redis().get("amw") is None


def test_misconfigured_alias_fails_only_views_that_use_redis() -> None:
    async def main() -> None:
        ok = await RedisPoolMiddleware(untouched_view)(AsyncRequestFactory().get("/"))
        assert ok.content == b"untouched"
        with pytest.raises(KeyError, match="No Redis pool alias 'missing'"):
            await RedisPoolMiddleware(aincr_view)(AsyncRequestFactory().get("/"))

    with override_settings(REDIS_POOL_MIDDLEWARE_ALIAS="missing"):
        asyncio.run(main())


@override_settings(ROOT_URLCONF="tests.asgi_app.urls")
def test_end_to_end_async_client() -> None:
    async def main() -> list[bytes]:
        client = AsyncClient()
        bodies = []
        for path in ["/aincr/", "/aincr/", "/sync_incr/", "/untouched/"]:
            response = await client.get(path)
            assert response.status_code == 200
            bodies.append(response.content)
        echoes = await asyncio.gather(*(client.get(f"/aecho/?v=t{i}") for i in range(20)))
        assert [r.content for r in echoes] == [f"t{i}".encode() for i in range(20)]
        (stats,) = aio.async_pool_stats()
        assert stats.in_use == 0
        assert stats.checkouts == 2 + 40
        return bodies

    assert asyncio.run(main()) == [b"1", b"2", b"1", b"untouched"]


@override_settings(ROOT_URLCONF="tests.asgi_app.urls")
def test_async_view_under_wsgi_gets_a_loop_per_request_and_leaks_nothing(
    fresh_server: RedisServer,
) -> None:
    # Under WSGI Django runs an async view with async_to_sync: a new loop per request.
    with override_settings(REDIS_POOL={"url": fresh_server.url}):
        client = Client()
        assert [client.get("/aincr/").content for _ in range(10)] == [
            str(i).encode() for i in range(1, 11)
        ]
        assert fresh_server.clients_named("redis_pool:") == []
