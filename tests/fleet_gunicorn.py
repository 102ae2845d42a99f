"""gunicorn settings for tests/test_fleet_workers.py (serving tests/fleet_app.py)."""

from __future__ import annotations

import os
from typing import Any


def when_ready(server: Any) -> None:
    # With --preload this runs in the master, before it forks the workers: a pool used
    # in the parent, as an app that touches Redis at import or start-up would.
    if os.environ.get("FLEET_USE_IN_MASTER") == "1":
        from redis_pool import get_redis

        get_redis().ping()


def post_worker_init(worker: Any) -> None:
    # Every worker talks to Redis once at start, so every worker is in the fleet view even
    # if the load balancer gave it no request.
    from redis_pool import get_redis

    get_redis().ping()
