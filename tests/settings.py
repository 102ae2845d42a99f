from __future__ import annotations

import os

from tests.base_settings import *  # noqa: F403  (a settings module: Django reads the names)
from tests.redis_server import LOOPBACK, free_port

ROOT_URLCONF = "tests.urls"

# conftest.py starts the session's redis-server on this port (pools connect lazily, so the
# settings can name it before it runs).
PORT = int(os.environ.setdefault("REDIS_POOL_TEST_PORT", str(free_port())))
REDIS_URL = f"redis://{LOOPBACK}:{PORT}/0"
REDIS_POOL = {
    "default": {"url": REDIS_URL},
    "other": {"url": f"redis://{LOOPBACK}:{PORT}/1"},
}
