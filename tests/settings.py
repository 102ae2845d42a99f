from __future__ import annotations

import os

from tests.redis_server import LOOPBACK, free_port

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["redis_pool"]
MIDDLEWARE = ["redis_pool.middleware.RedisPoolMiddleware"]
ROOT_URLCONF = "tests.urls"

# conftest.py starts the session's redis-server on this port (pools connect lazily, so the
# settings can name it before it runs).
PORT = int(os.environ.setdefault("REDIS_POOL_TEST_PORT", str(free_port())))
REDIS_URL = f"redis://{LOOPBACK}:{PORT}/0"
REDIS_POOL = {
    "default": {"url": REDIS_URL},
    "other": {"url": f"redis://{LOOPBACK}:{PORT}/1"},
}
