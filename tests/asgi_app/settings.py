"""Settings for serving ``tests.asgi_app`` with uvicorn in a subprocess.

``REDIS_URL`` and ``REDIS_MAX_CONNECTIONS`` come from the environment. With
``ASGI_APP_REPORT`` set, the process writes a JSON report after its event loop has closed
(at exit) and then waits for a line on stdin, so the test can look at the Redis server
while the process is still alive.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

from tests.base_settings import *  # noqa: F403  (a settings module: Django reads the names)

ROOT_URLCONF = "tests.asgi_app.urls"
REDIS_POOL = {
    "url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "max_connections": int(os.environ.get("REDIS_MAX_CONNECTIONS", "8")),
    "pool_timeout": 5,
}


def _report() -> None:
    from redis_pool import aio
    from tests.asgi_app import urls

    report = {
        "pid": os.getpid(),
        "live": [stats.as_dict() for stats in aio.async_pool_stats()],
        "pools": [pool.stats().as_dict() for pool in urls.seen_pools],
    }
    with open(os.environ["ASGI_APP_REPORT"] + ".tmp", "w") as fh:
        json.dump(report, fh)
    os.rename(os.environ["ASGI_APP_REPORT"] + ".tmp", os.environ["ASGI_APP_REPORT"])
    sys.stdin.readline()


if os.environ.get("ASGI_APP_REPORT"):
    atexit.register(_report)
