"""Settings for Django's own cache and session suites on ``redis_pool.cache.RedisCache``.

``redis_pool`` is deliberately not in INSTALLED_APPS: the backend must work without it.
The Redis server is the runner's own (REDIS_POOL_SUITE_URL), on a dedicated database.
"""

from __future__ import annotations

import os

SECRET_KEY = "django-tests-on-redis-pool"
USE_TZ = False
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "cache",
    "sessions_tests",
]
MIGRATION_MODULES = {"auth": None, "contenttypes": None, "sessions": None}
ROOT_URLCONF = "cache.tests"  # any importable module: the suites use no URLs of their own
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
REDIS_POOL = {"suite": {"url": os.environ["REDIS_POOL_SUITE_URL"]}}
CACHES = {"default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "suite"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
