"""tests/fleet_app.py with the Prometheus view mounted (tests/test_contrib_prometheus_workers.py).

    DJANGO_SETTINGS_MODULE=tests.prometheus_app FLEET_REDIS_URL=redis://... \\
        gunicorn -c tests/fleet_gunicorn.py 'tests.prometheus_app:wsgi()'
"""

from __future__ import annotations

from django.urls import path

from redis_pool.contrib.prometheus import metrics_view
from tests.fleet_app import *  # noqa: F403  (settings, views and the WSGI factory)
from tests.fleet_app import urlpatterns as fleet_urlpatterns

ROOT_URLCONF = __name__
urlpatterns = [
    *fleet_urlpatterns,
    path("metrics/redis-pool", metrics_view),
    path("metrics/redis-pool/process", metrics_view, {"scope": "process"}),
]
