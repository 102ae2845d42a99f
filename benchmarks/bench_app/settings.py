"""Settings shared by every benchmark variant: one server config, the views differ.

``REDIS_URL`` comes from the environment (benchmarks/compare.py starts a private server).
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from typing import Any

SECRET_KEY = "benchmarks-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
USE_I18N = False
DATABASES: dict[str, Any] = {}
INSTALLED_APPS = ["redis_pool"]
# Installed for every variant, so each pays its one lazy object per request alike.
MIDDLEWARE = ["redis_pool.middleware.RedisPoolMiddleware"]
ROOT_URLCONF = "benchmarks.bench_app.urls"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Defaults on purpose: the benchmark measures what a user gets without tuning.
REDIS_POOL = {"url": REDIS_URL}

CACHES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
}
HAVE_DJANGO_REDIS = find_spec("django_redis") is not None
if HAVE_DJANGO_REDIS:
    CACHES["django_redis"] = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}
