"""django-redis's test settings (tests/settings/sqlite.py) with every cache on redis_pool."""

from __future__ import annotations

import os

SECRET_KEY = "django_tests_secret_key"
_URL = os.environ["REDIS_POOL_SUITE_URL"]
REDIS_POOL = {
    "default": {"url": _URL},
    # django-redis's "doesnotexist" cache: a port nothing listens on.
    "doesnotexist": {"url": "redis://127.0.0.1:1/1", "socket_connect_timeout": 0.5},
}
CACHES = {
    "default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "default"},
    "doesnotexist": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "doesnotexist"},
    "sample": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "default"},
    "with_prefix": {
        "BACKEND": "redis_pool.cache.RedisCache",
        "LOCATION": "default",
        "KEY_PREFIX": "test-prefix",
    },
}
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]
USE_TZ = False
