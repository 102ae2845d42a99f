"""A one-file Django project for the tests that run a real WSGI server in a subprocess.

Settings, URLs and views live together so a test can serve it with
``DJANGO_SETTINGS_MODULE=tests.serverapp gunicorn 'django.core.wsgi:get_wsgi_application()'``.
``REDIS_URL`` (and optionally the ``REDIS_POOL_*`` timeouts) come from the environment.
"""

from __future__ import annotations

import os
import time

from django.http import HttpRequest, HttpResponse
from django.urls import path
from redis.exceptions import RedisError

from tests.base_settings import *  # noqa: F403  (a settings module: Django reads the names)

ROOT_URLCONF = __name__
REDIS_POOL = {
    "url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "socket_connect_timeout": float(os.environ.get("REDIS_POOL_CONNECT_TIMEOUT", "1")),
    "socket_timeout": float(os.environ.get("REDIS_POOL_SOCKET_TIMEOUT", "1")),
}


def plain(request: HttpRequest) -> HttpResponse:
    """No Redis: must answer whatever state Redis is in."""
    return HttpResponse("ok")


def incr(request: HttpRequest) -> HttpResponse:
    # Report the failure instead of a bare 500 so the test can assert which exception
    # the app raised and how long it took to raise it.
    start = time.monotonic()
    try:
        value = request.redis.incr("serverapp:hits")  # type: ignore[attr-defined]
    except RedisError as exc:
        elapsed = time.monotonic() - start
        return HttpResponse(f"{type(exc).__name__} {elapsed:.3f}", status=503)
    return HttpResponse(str(value))


def echo(request: HttpRequest) -> HttpResponse:
    """SET then GET a key unique to this request; a shared socket would cross the replies."""
    token = request.GET["v"]
    client = request.redis  # type: ignore[attr-defined]
    client.set(f"serverapp:echo:{token}", token, ex=60)
    got = client.get(f"serverapp:echo:{token}")
    return HttpResponse(f"{os.getpid()} {got.decode() if got is not None else ''}")


urlpatterns = [
    path("plain/", plain),
    path("incr/", incr),
    path("echo/", echo),
]
