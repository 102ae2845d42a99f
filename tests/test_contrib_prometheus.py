"""redis_pool.contrib.prometheus against real redis-servers: the scrape's values are the
pool statistics (this process's, or the fleet's as ``redis_poolstats --json`` shows them),
parsed back with prometheus_client's own parser; no secret in any label."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from django.test import RequestFactory, override_settings
from prometheus_client import CollectorRegistry

from redis_pool import get_pool, get_redis, pool_stats
from redis_pool.contrib.prometheus import (
    RedisPoolCollector,
    metrics_view,
    render,
)
from redis_pool.observability import monitor
from tests.helpers import holding, run_command
from tests.prometheus_helpers import expected, process_values, samples
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Pr0m-S3cret_x4"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def _monitor_stopped() -> Iterator[None]:
    monitor.stop()
    yield
    monitor.stop()


def test_process_scope_is_pool_stats(fresh_server: RedisServer) -> None:
    options = {"url": fresh_server.url, "max_connections": 4, "pool_timeout": 0.05}
    other = {**options, "url": fresh_server.url.replace("/0", "/1")}
    with override_settings(REDIS_POOL={"default": options, "b": other}):
        for _ in range(20):
            get_redis().incr("n")
        with holding(get_pool(), 4), pytest.raises(Exception, match="exhausted"):
            get_redis().ping()
        with holding(get_pool(), 2):
            found = samples(render(scope="process"))
            stats = pool_stats().as_dict()
        assert (stats["in_use"], stats["wait_timeouts"]) == (2, 1)
        assert stats["checkouts"] > 20
        assert process_values(found, "default", stats["pid"]) == expected(stats)
        # An alias never used here: its pool, all zeros, still listed.
        assert process_values(found, "b", stats["pid"]) == expected(pool_stats("b").as_dict())
        # No fleet families in the process scope (no network at all).
        assert not any(name.startswith("redis_pool_up") for name, _ in found)


def test_process_scope_adds_the_async_pools(fresh_server: RedisServer) -> None:
    import asyncio

    from redis_pool import aget_redis

    async def traffic() -> None:
        for _ in range(5):
            await aget_redis().incr("a")
        found = samples(render(scope="process"))
        values = process_values(found, "default", pool_stats().pid)
        assert values["redis_pool_checkouts_total"] == 5 + pool_stats().checkouts
        assert values["db_client_connection_max"] == 2 * pool_stats().max_connections

    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        get_redis().ping()
        asyncio.run(traffic())


def test_fleet_scope_is_the_poolstats_json(fresh_server: RedisServer) -> None:
    url = fresh_server.url.replace("redis://", f"redis://:{PASSWORD}@")
    fresh_server.command("CONFIG", "SET", "requirepass", PASSWORD)
    fresh_server.password = PASSWORD
    with override_settings(REDIS_POOL={"default": {"url": url, "max_connections": 5}}):
        for _ in range(7):
            get_redis().incr("n")
        monitor.publish_now()
        text = render().decode()
        out, err, status = run_command("--json")
    assert status == 0, err
    [alias] = json.loads(out)["aliases"]
    [process] = alias["processes"]
    found = samples(text)
    assert process_values(found, "default", process["pid"]) == {
        **expected(process),
        "redis_pool_server_connections": float(process["server_connections"]),
        "redis_pool_snapshot_age_seconds": pytest.approx(process["seen_s"], abs=1),
    }
    by_alias = {
        name: value for (name, labels), value in found.items() if labels == (("alias", "default"),)
    }
    server, budget = alias["server"], alias["budget"]
    assert by_alias == {
        "redis_pool_up": 1.0,
        "redis_pool_processes": 1.0,
        "redis_pool_unpublished_connections": 0.0,
        "redis_pool_server_connected_clients": float(server["connected_clients"]),
        "redis_pool_server_maxclients": float(server["maxclients"]),
        "redis_pool_server_rejected_connections_total": float(server["rejected_connections"]),
        "redis_pool_budget_connections": float(budget["worst_case"]),
        "redis_pool_budget_used_ratio": pytest.approx(budget["used_pct"] / 100),
    }
    assert PASSWORD not in text
    assert all(PASSWORD not in value for _, labels in found for _, value in labels)


def test_redis_down_is_up_zero_and_the_scrape_still_answers() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(REDIS_POOL={"default": {"url": url, "socket_connect_timeout": 0.5}}):
        found = samples(render())
    assert found[("redis_pool_up", (("alias", "default"),))] == 0.0
    assert not any(dict(labels).get("pid") for _, labels in found)


def test_a_sentinel_or_cluster_alias_has_no_fleet_series_but_a_process_scope() -> None:
    sentinel = {"sentinels": [("127.0.0.1", free_port())], "service_name": "mymaster"}
    with override_settings(REDIS_POOL={"default": sentinel}):
        fleet = samples(render())
        process = samples(render(scope="process"))
    assert not any(dict(labels).get("alias") == "default" for _, labels in fleet)
    assert any(dict(labels).get("alias") == "default" for _, labels in process)


def test_only_the_aliases_asked_for(redis_server: RedisServer) -> None:
    found = samples(render(scope="process", aliases=["other"]))
    assert {dict(labels)["alias"] for _, labels in found} == {"other"}


def test_registering_touches_no_network() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(REDIS_POOL={"default": {"url": url}}):
        registry = CollectorRegistry()  # auto_describe: calls describe(), not collect()
        registry.register(RedisPoolCollector())
        assert registry.get_sample_value("redis_pool_up", {"alias": "default"}) == 0.0


def test_a_bad_scope_is_refused() -> None:
    with pytest.raises(ValueError, match=r"scope must be one of \('fleet', 'process'\), not 'x'"):
        RedisPoolCollector(scope="x")


def test_the_view(redis_server: RedisServer) -> None:
    get_redis().ping()
    request = RequestFactory().get("/metrics/redis-pool")
    response = metrics_view(request, scope="process")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    values = process_values(samples(response.content), "default", pool_stats().pid)
    assert values == expected(pool_stats().as_dict())
    assert metrics_view(RequestFactory().post("/metrics/redis-pool")).status_code == 405


def test_without_the_extra_the_import_names_it() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "try:\n    import redis_pool.contrib.prometheus\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == (
        "redis_pool.contrib.prometheus needs prometheus_client: install the extra with "
        "pip install 'django-redis-pool[prometheus]'."
    ), result.stderr
