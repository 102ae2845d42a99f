"""Settings for the django-redis-pool demo/test project (multi-alias REDIS_POOL form).

Everything that differs between machines comes from the environment:

* ``REDIS_URL`` -- Redis server for the "default" alias (default ``redis://127.0.0.1:6379/0``);
  the "sessions" alias uses the next database number on the same server unless
  ``REDIS_SESSIONS_URL`` is set.
* ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (``1``/``true``), ``DJANGO_ALLOWED_HOSTS`` (comma list),
  ``DJANGO_SQLITE_PATH`` (where ``migrate`` puts its sqlite file).
* ``DEMO_RATELIMIT_LIMIT`` / ``DEMO_RATELIMIT_WINDOW`` -- requests per client IP per window
  (seconds) for ``/ratelimit/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or default


def redis_url_with_db(url: str, db: int) -> str:
    """Return ``url`` pointing at database ``db`` (TCP: path ``/N``; unix sockets: ``?db=N``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    path = parts.path
    if parts.scheme == "unix":
        query.append(("db", str(db)))
    else:
        path = f"/{db}"
    # Built by hand: urlunsplit() drops the "//" of unix:///path URLs (empty netloc).
    rebuilt = f"{parts.scheme}://{parts.netloc}{path}"
    return f"{rebuilt}?{urlencode(query)}" if query else rebuilt


def redis_url_db(url: str) -> int:
    """The database number ``url`` selects, following redis-py's rules (``?db=`` wins)."""
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key == "db":
            return int(value)
    path = parts.path.strip("/")
    if parts.scheme != "unix" and path:
        return int(path)
    return 0


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY",
    "django-insecure-redis-pool-testproject-dev-key-do-not-use-in-production",
)
DEBUG = _env_bool("DJANGO_DEBUG", False)
# The project is only ever served on loopback (tests, benchmarks, scripts/demo); set
# DJANGO_ALLOWED_HOSTS before exposing it anywhere else.
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", ["*", "127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "redis_pool",
    "demoapp.apps.DemoAppConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "redis_pool.middleware.RedisPoolMiddleware",
]

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"
ASGI_APPLICATION = "testproject.asgi.application"

TEMPLATES: list[dict[str, Any]] = []

# Nothing here stores rows; sqlite only exists so `migrate` has something to talk to.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SQLITE_PATH") or str(BASE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
REDIS_SESSIONS_URL = os.environ.get("REDIS_SESSIONS_URL") or redis_url_with_db(
    REDIS_URL, redis_url_db(REDIS_URL) + 1
)

# Options shared by both aliases: fail fast when Redis is down (so /health/ can answer 503
# quickly) and keep the pool bounded -- 3 gunicorn workers x 4 threads need at most 4 each.
_POOL_OPTIONS: dict[str, Any] = {
    "max_connections": 20,
    "pool_timeout": 5,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "health_check_interval": 30,
}

REDIS_POOL: dict[str, Any] = {
    "default": {"url": REDIS_URL, **_POOL_OPTIONS},
    "sessions": {"url": REDIS_SESSIONS_URL, **_POOL_OPTIONS, "max_connections": 10},
}

# Django's cache and, through it, the sessions: on the "default" alias's pool, the same one
# the views' request.redis uses (docs/cache.md). One bounded pool per process serves all three.
CACHES: dict[str, Any] = {
    "default": {
        "BACKEND": "redis_pool.cache.RedisCache",
        "LOCATION": "default",
        "KEY_PREFIX": "demo",
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

# demoapp knobs.
DEMO_VISITORS_ALIAS = "sessions"  # where per-client hit counts live (see demoapp/counters.py)
DEMO_RATELIMIT_LIMIT = int(os.environ.get("DEMO_RATELIMIT_LIMIT", "100"))
DEMO_RATELIMIT_WINDOW = int(os.environ.get("DEMO_RATELIMIT_WINDOW", "10"))

# With DEBUG off Django only mails 500s to ADMINS; print them instead so gunicorn's
# error log shows what went wrong.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "redis_pool": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
