"""What every test project here shares: the app, its middleware, no database."""

from __future__ import annotations

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["redis_pool"]
MIDDLEWARE = ["redis_pool.middleware.RedisPoolMiddleware"]
