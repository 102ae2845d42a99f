"""``request.redis``: tested directly (RequestFactory, sync and async) and end to end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, AsyncRequestFactory, Client, RequestFactory, override_settings
from django.utils.functional import SimpleLazyObject

from redis_pool import get_redis
from redis_pool.middleware import RedisPoolMiddleware


def sync_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.redis.incr("mw")))  # type: ignore[attr-defined]


async def async_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async")


def test_sync_attaches_the_alias_client() -> None:
    middleware = RedisPoolMiddleware(sync_view)
    assert not iscoroutinefunction(middleware)
    request = RequestFactory().get("/")
    response = middleware(request)
    assert response.content == b"1"
    assert isinstance(request.redis, SimpleLazyObject)  # type: ignore[attr-defined]
    assert isinstance(request.redis, redis.Redis)  # type: ignore[attr-defined]
    assert request.redis._wrapped is get_redis()  # type: ignore[attr-defined]


def test_async_mode() -> None:
    middleware = RedisPoolMiddleware(async_view)
    assert iscoroutinefunction(middleware)
    request = AsyncRequestFactory().get("/")
    response = asyncio.run(middleware(request))
    assert response.content == b"async"
    assert request.redis.connection_pool is get_redis().connection_pool  # type: ignore[attr-defined]


def test_lazy_a_request_that_never_uses_it_resolves_nothing() -> None:
    middleware = RedisPoolMiddleware(lambda request: HttpResponse("plain"))
    request = RequestFactory().get("/")
    middleware(request)
    from django.utils.functional import empty

    assert request.redis._wrapped is empty  # type: ignore[attr-defined]


def test_misconfigured_alias_fails_only_views_that_use_redis() -> None:
    with override_settings(REDIS_POOL_MIDDLEWARE_ALIAS="missing"):
        request = RequestFactory().get("/")
        assert RedisPoolMiddleware(lambda r: HttpResponse("ok"))(request).content == b"ok"
        with pytest.raises(KeyError, match="No Redis pool alias 'missing'"):
            RedisPoolMiddleware(sync_view)(RequestFactory().get("/"))


def test_middleware_alias_setting() -> None:
    with override_settings(REDIS_POOL_MIDDLEWARE_ALIAS="other"):
        request = RequestFactory().get("/")
        RedisPoolMiddleware(sync_view)(request)
        assert request.redis._wrapped is get_redis("other")  # type: ignore[attr-defined]
    assert get_redis("other").get("mw") == b"1"
    assert get_redis().get("mw") is None


def test_end_to_end_client(client: Client) -> None:
    assert client.get("/incr/").content == b"1"
    assert client.get("/incr/").content == b"2"
    assert client.get("/plain/").content == b"ok"
    assert get_redis().get("hits") == b"2"


def test_end_to_end_async_client(async_client: AsyncClient) -> None:
    async def go() -> list[Any]:
        return [(await async_client.get("/aincr/")).content for _ in range(3)]

    assert asyncio.run(go()) == [b"1", b"2", b"3"]
