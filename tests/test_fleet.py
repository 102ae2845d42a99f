"""Publishing snapshots to Redis and reading the fleet back, against real redis-servers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from redis_pool import get_pool, get_redis, monitor, pool_stats
from redis_pool.config.defaults import hostname
from redis_pool.fleet import read_alias, read_fleet
from tests.redis_server import RedisServer, env_with
from tests.test_fork import _in_child
from tests.test_stats import wait_for

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "fleetuser_q7", "S3cretPw_z9"


@pytest.fixture(autouse=True)
def _monitor_stopped() -> Iterator[None]:
    # Each test starts and ends with no monitor thread and no stats connections, so that
    # what the server sees is what the test did.
    monitor.stop()
    yield
    monitor.stop()


def published(server: RedisServer, alias: str = "default") -> dict[str, Any]:
    raw = server.command("GET", monitor.process_key(alias, hostname(), os.getpid()))
    assert raw.startswith(b"$"), raw
    assert not raw.startswith(b"$-1"), "no snapshot published"
    return json.loads(raw.split(b"\r\n")[1])  # type: ignore[no-any-return]


def test_a_process_publishes_its_snapshot_with_an_expiry(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        get_redis().set("k", "v")
        monitor.publish_now()
        snapshot = published(fresh_server)
        stats = pool_stats()
        assert snapshot["pid"] == os.getpid()
        assert snapshot["host"] == hostname()
        assert snapshot["project"] == "tests"
        assert (snapshot["created"], snapshot["checkouts"]) == (stats.created, stats.checkouts)
        assert snapshot["client_name"] == stats.client_name
        assert (snapshot["interval"], snapshot["ttl"]) == (2.0, 5.0)
        key = monitor.process_key("default", hostname(), os.getpid())
        ttl_ms = int(fresh_server.command("PTTL", key)[1:].split(b"\r\n")[0])
        assert 4000 < ttl_ms <= 5000
        index = fresh_server.command("ZRANGE", monitor.index_key("default"), "0", "-1")
        assert f"{hostname()}:{os.getpid()}".encode() in index
        # One stats connection, named apart from the pool's, not taken from the pool.
        stats_clients = fresh_server.clients_named(monitor.STATS_CLIENT_PREFIX)
        assert [c["name"] for c in stats_clients] == [monitor.stats_client_name("default")]
        assert pool_stats().checkouts == stats.checkouts
        assert len(fresh_server.clients_named("redis_pool:")) == 1


def test_the_thread_publishes_by_itself_and_keeps_the_key_alive(
    fresh_server: RedisServer,
) -> None:
    options = {"default": {"url": fresh_server.url, "publish_interval": 0.2}}
    with override_settings(REDIS_POOL=options):
        get_redis().ping()
        assert monitor.running()
        first = wait_for(lambda: pool_stats().publishes >= 1, 5, "a first publish")
        assert first
        wait_for(lambda: pool_stats().publishes >= 4, 5, "more publishes")
        assert published(fresh_server)["ttl"] == pytest.approx(1.4)


def test_publishing_off_writes_nothing_and_opens_nothing(fresh_server: RedisServer) -> None:
    options = {"default": {"url": fresh_server.url, "publish_stats": False}}
    with override_settings(REDIS_POOL=options):
        get_redis().ping()
        assert not monitor.running()  # nothing needs the thread
        monitor.publish_now()
        assert fresh_server.command("DBSIZE") == b":0\r\n"
        assert fresh_server.clients_named(monitor.STATS_CLIENT_PREFIX) == []
        assert pool_stats().publishes == 0


def test_a_process_that_never_connected_publishes_nothing(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        get_pool()
        monitor.publish_now()
        assert fresh_server.command("DBSIZE") == b":0\r\n"
        assert fresh_server.client_list()[0]["name"] == ""  # only the harness itself


def test_redis_down_counts_an_error_and_the_next_publish_recovers(
    fresh_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="redis_pool")
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        get_redis().ping()
        monitor.publish_now()
        assert pool_stats().publishes == 1
        fresh_server.kill()
        monitor.publish_now()  # must not raise
        assert (pool_stats().publishes, pool_stats().publish_errors) == (1, 1)
        fresh_server.start()
        monitor.publish_now()
        assert (pool_stats().publishes, pool_stats().publish_errors) == (2, 1)
        assert published(fresh_server)["publish_errors"] == 1
    failures = [r for r in caplog.records if "publishing stats" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.DEBUG


def test_the_fleet_view_lists_this_process_with_the_servers_counts(
    fresh_server: RedisServer,
) -> None:
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        pool = get_pool()
        held = [pool.get_connection() for _ in range(3)]
        try:
            monitor.publish_now()
            view = read_alias("default")
        finally:
            for connection in held:
                pool.release(connection)
        assert view.error is None
        [row] = view.processes
        assert (row["pid"], row["host"]) == (os.getpid(), hostname())
        assert (row["in_use"], row["idle"], row["open"], row["created"]) == (3, 0, 3, 3)
        assert row["server_connections"] == 3 == len(fresh_server.clients_named("redis_pool:"))
        assert row["status"] == "ok"
        assert view.totals["in_use"] == 3
        assert view.totals["processes"] == 1
        assert view.server is not None
        assert view.server.version
        assert view.server.maxclients == 10000
        # 3 of the pool, 1 stats publisher, 1 reader (the harness's CLIENT LIST came later)
        assert view.server.connected_clients == 5
        assert view.server.clients_by_group == {
            "redis_pool:tests:default": 3,
            "redis_pool_stats:tests:default": 1,
            "redis_poolstats (this command)": 1,
        }
        # Reading used a connection of its own and closed it; the pool is as it was.
        assert fresh_server.clients_named("redis_poolstats:") == []
        assert pool_stats().checkouts == 3


def test_a_dead_process_disappears_within_its_ttl(fresh_server: RedisServer) -> None:
    script = (
        "import django, time\n"
        "django.setup()\n"
        "from redis_pool import get_redis\n"
        "get_redis().ping()\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    settings = {"default": {"url": fresh_server.url, "publish_interval": 0.2}}
    env = env_with(
        DJANGO_SETTINGS_MODULE="tests.fleet_app",
        FLEET_REDIS_URL=fresh_server.url,
        FLEET_PUBLISH_INTERVAL="0.2",
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"up\n"
        with override_settings(REDIS_POOL=settings):
            pids = lambda: [p["pid"] for p in read_alias("default").processes]  # noqa: E731
            wait_for(lambda: child.pid in pids(), 5, "the child to publish")
            child.send_signal(signal.SIGKILL)
            child.wait(5)
            killed = time.monotonic()
            wait_for(lambda: child.pid not in pids(), 5, "the child to disappear")
            assert time.monotonic() - killed <= 1.4 + 0.5  # ttl = 2 * 0.2 + 1
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_a_clean_exit_removes_the_snapshot_at_once(fresh_server: RedisServer) -> None:
    script = (
        "import django\n"
        "django.setup()\n"
        "from redis_pool import get_redis, monitor\n"
        "get_redis().ping()\n"
        "monitor.publish_now()\n"
    )
    env = env_with(DJANGO_SETTINGS_MODULE="tests.fleet_app", FLEET_REDIS_URL=fresh_server.url)
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=30)
    # Exited normally: atexit deleted the key and the index entry instead of waiting for the ttl.
    assert fresh_server.command("DBSIZE") == b":0\r\n"


def test_a_forked_child_publishes_under_its_own_pid(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        get_redis().ping()
        monitor.publish_now()
        assert monitor.running()

        def child() -> dict[str, object]:
            running_before = monitor.running()
            get_redis().ping()  # the child's first connection starts its own monitor
            monitor.publish_now()
            return {"running_before": running_before, "running_after": monitor.running()}

        result = _in_child(child)
        assert result == {"running_before": False, "running_after": True}
        # The child exited with os._exit (no atexit): its key stays until the ttl.
        view = read_alias("default")
        assert len(view.processes) == 2
        assert {p["pid"] for p in view.processes} > {os.getpid()}
        # The parent's stats connection still works after the fork.
        monitor.publish_now()
        assert pool_stats().publish_errors == 0


def test_settings_change_moves_publishing_to_the_new_server(fresh_server: RedisServer) -> None:
    with RedisServer() as second:
        with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
            get_redis().ping()
            monitor.publish_now()
            with override_settings(REDIS_POOL={"default": {"url": second.url}}):
                get_redis().ping()
                monitor.publish_now()
                assert fresh_server.command("DBSIZE") == b":0\r\n"  # unpublished there
                assert fresh_server.clients_named(monitor.STATS_CLIENT_PREFIX) == []
                assert [p["pid"] for p in read_alias("default").processes] == [os.getpid()]
        monitor.stop()
        assert second.clients_named(monitor.STATS_CLIENT_PREFIX) == []


def test_aliases_sharing_a_server_share_one_budget(fresh_server: RedisServer) -> None:
    pools = {
        "default": {"url": fresh_server.url, "max_connections": 10},
        "other": {"url": fresh_server.url.replace("/0", "/1"), "max_connections": 6},
    }
    with override_settings(REDIS_POOL=pools):
        get_redis().ping()
        get_redis("other").ping()
        monitor.publish_now()
        views = read_fleet(["default", "other"])
        budgets = [v.budget for v in views]
        assert budgets[0] == budgets[1]
        assert budgets[0] is not None
        assert budgets[0]["aliases"] == ["default", "other"]
        assert budgets[0]["max_connections"] == 16
        assert budgets[0]["stats_connections"] == 2
        assert budgets[0]["other_clients"] == 0  # the reader itself is not counted
        assert budgets[0]["worst_case"] == 18
        assert budgets[0]["status"] == "ok"


def test_client_list_refused_by_acl_is_said_and_the_rest_shown(tmp_path: Path) -> None:
    acl = (USER, "on", f">{PASSWORD}", "~*", "&*", "+@all", "-client|list", "-client|kill")
    with RedisServer("--user", *acl, password="admin_pw_4x") as server:
        url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0"
        with override_settings(REDIS_POOL={"default": {"url": url}}):
            get_redis().ping()
            monitor.publish_now()
            view = read_alias("default")
        assert view.error is None
        assert view.server is not None
        assert view.server.client_list_error is not None
        assert "CLIENT LIST refused" in view.server.client_list_error
        assert "no permissions" in view.server.client_list_error
        assert view.server.clients_by_group is None
        assert view.server.connected_clients == 3  # INFO still answers
        [row] = view.processes
        assert row["server_connections"] is None
        assert row["open"] == 1
        text = json.dumps(view.as_dict())
        assert USER not in text
        assert PASSWORD not in text
