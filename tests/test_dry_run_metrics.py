"""Checking settings leaves no trace in redis-py's OpenTelemetry metrics (issue 12).

redis-py 8 records connection counts through ``redis.observability`` once an application
has set a global MeterProvider and called ``get_observability_instance().init(...)``. The
settings checks once built a throw-away pool and connection per alias, each of which showed
up as an idle connection that never went away. Run in a subprocess: the global meter
provider can be set only once per process, and the rest of the suite should not pay for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import RedisServer

pytest.importorskip("opentelemetry.sdk.metrics", reason="needs the test extra opentelemetry-sdk")

ROOT_DIR = Path(__file__).resolve().parent.parent

SCRIPT = """
import gc, io, json, sys
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
from redis.observability import OTelConfig, get_observability_instance
get_observability_instance().init(OTelConfig())

import django
from django.conf import settings
url = sys.argv[1]
settings.configure(
    INSTALLED_APPS=["redis_pool"],
    REDIS_POOL={"default": {"url": url}, "cache": {"url": url.rsplit("/", 1)[0] + "/1"},
                "sessions": {"url": url, "password": "x", "ssl_cert_reqs": "none",
                             "ssl": True}},
)
django.setup()  # builds the pools (no connection yet)
from django.core.management import call_command
from redis_pool.config.settings import conf

for _ in range(3):
    conf.parsed()
call_command("check", stdout=io.StringIO())

def points():
    gc.collect()
    data = reader.get_metrics_data()
    found = []
    for rm in (data.resource_metrics if data else []):
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = getattr(point, "count", None)
                    found.append([metric.name, dict(point.attributes), value])
    return found

after_checks = points()
from redis_pool import get_redis
get_redis().ping()  # a real connection: proves the reader sees redis-py's metrics
after_ping = points()
print(json.dumps({"after_checks": after_checks, "after_ping": after_ping}))
"""


def test_settings_checks_record_no_connection(redis_server: RedisServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, redis_server.url],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Nothing at all: no connection count, no create time, no close.
    assert result["after_checks"] == [], "validation recorded connections that do not exist"
    # The control: one real connection is seen, and only that one.
    live = [p for p in result["after_ping"] if p[0] == "db.client.connection.count" and p[2]]
    assert len(live) == 1
    assert sum(p[2] for p in live) == 1
