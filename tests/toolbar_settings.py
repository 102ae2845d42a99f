"""Settings the debug-toolbar tests apply with ``override_settings(**TOOLBAR)``: the toolbar
installed and shown to the test client, with the Redis panel (and the timer, so that the
panel runs among the toolbar's own)."""

from __future__ import annotations

from typing import Any

TOOLBAR: dict[str, Any] = {
    "DEBUG": True,
    "INTERNAL_IPS": ["127.0.0.1"],
    "INSTALLED_APPS": ["django.contrib.staticfiles", "redis_pool", "debug_toolbar"],
    "MIDDLEWARE": [
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        "redis_pool.middleware.RedisPoolMiddleware",
    ],
    "ROOT_URLCONF": "tests.toolbar_urls",
    "STATIC_URL": "/static/",
    "TEMPLATES": [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
    "DEBUG_TOOLBAR_PANELS": [
        "debug_toolbar.panels.timer.TimerPanel",
        "redis_pool.contrib.debug_toolbar.RedisPanel",
    ],
    "DEBUG_TOOLBAR_CONFIG": {"IS_RUNNING_TESTS": False},
}
