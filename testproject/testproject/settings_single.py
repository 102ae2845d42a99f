"""Same project, but REDIS_POOL in its single-pool form (one implicit "default" alias).

Use with ``DJANGO_SETTINGS_MODULE=testproject.settings_single`` or
``python testproject/manage.py ... --settings testproject.settings_single``.
"""

from __future__ import annotations

from testproject.settings import *  # noqa: F403
from testproject.settings import _POOL_OPTIONS, REDIS_URL

REDIS_POOL = {"url": REDIS_URL, **_POOL_OPTIONS}

# There is no "sessions" alias in this form, so the per-client counters share the default pool.
DEMO_VISITORS_ALIAS = "default"
