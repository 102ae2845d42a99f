from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def incr(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.redis.incr("hits")))  # type: ignore[attr-defined]


async def aincr(request: HttpRequest) -> HttpResponse:
    from asgiref.sync import sync_to_async

    value = await sync_to_async(request.redis.incr)("hits")  # type: ignore[attr-defined]
    return HttpResponse(str(value))


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("incr/", incr),
    path("aincr/", aincr),
    path("plain/", plain),
]
