"""A one-file Django project for the fleet tests: settings, URLs, views, WSGI application.

    DJANGO_SETTINGS_MODULE=tests.fleet_app FLEET_REDIS_URL=redis://... \\
        gunicorn -c tests/fleet_gunicorn.py 'tests.fleet_app:wsgi()'

``FLEET_REDIS_URL`` names the server; ``FLEET_PUBLISH_INTERVAL`` (seconds) and
``FLEET_MAX_CONNECTIONS`` tune the pool.
"""

from __future__ import annotations

import os
import time

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.base_settings import *  # noqa: F403  (a settings module: Django reads the names)

ROOT_URLCONF = __name__
REDIS_POOL = {
    "url": os.environ.get("FLEET_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "publish_interval": float(os.environ.get("FLEET_PUBLISH_INTERVAL", "2")),
    "max_connections": int(os.environ.get("FLEET_MAX_CONNECTIONS", "8")),
    "socket_connect_timeout": 1.0,
    "socket_timeout": 2.0,
}


def incr(request: HttpRequest) -> HttpResponse:
    request.redis.incr("fleet:hits")  # type: ignore[attr-defined]
    return HttpResponse(str(os.getpid()))


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(os.getpid()))


def hold(request: HttpRequest) -> HttpResponse:
    """Keep one connection checked out for ``s`` seconds: an in-use gauge to observe."""
    from redis_pool import get_pool

    pool = get_pool()
    connection = pool.get_connection()
    try:
        time.sleep(float(request.GET.get("s", "1")))
    finally:
        pool.release(connection)
    return HttpResponse(str(os.getpid()))


urlpatterns = [path("plain/", plain), path("incr/", incr), path("hold/", hold)]


def wsgi() -> object:
    """The WSGI application (a factory: this module is also the settings Django imports)."""
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
