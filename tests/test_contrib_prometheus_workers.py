"""The Prometheus proof with real processes: gunicorn (3 workers x 4 threads) against a
real redis-server with a password; one scrape of one worker, parsed with prometheus_client's
own parser, has every worker's series (3 pids), equal to ``redis_poolstats --json`` at the
same moment; a worker killed with SIGKILL is gone within the snapshot's ttl; no secret in
any label."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from django.test import override_settings

from redis_pool.observability import monitor
from tests.helpers import children, http_get, run_command, wait_for
from tests.prometheus_helpers import expected, process_values, samples
from tests.redis_server import LOOPBACK, RedisServer, env_with, free_port

ROOT = Path(__file__).resolve().parent.parent
WORKERS, THREADS, REQUESTS, CONCURRENCY = 3, 4, 150, 8
INTERVAL = 0.5
TTL = monitor.ttl_seconds(INTERVAL)
PASSWORD = "Gun1corn-Pr0m_s3cret"


def get(port: int, path: str, timeout: float = 10) -> int:
    """One request; returns the pid of the worker that served it."""
    status, body, _ = http_get(port, path, timeout)
    assert status == 200, body[:500]
    return int(body)


def scrape(port: int, path: str = "/metrics/redis-pool") -> str:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body[:500]
        return body
    finally:
        connection.close()


def pids(text: str, alias: str = "default") -> set[int]:
    return {
        int(dict(labels)["pid"])
        for name, labels in samples(text)
        if name == "db_client_connection_max" and dict(labels)["alias"] == alias
    }


def poolstats_json() -> dict[str, Any]:
    out, err, status = run_command("--json")
    assert status == 0, err
    [alias] = json.loads(out)["aliases"]
    return alias  # type: ignore[no-any-return]


def settled(alias: dict[str, Any], expected_checkouts: dict[int, int]) -> dict[str, Any] | None:
    """The listing once every worker has published all it served (and holds nothing)."""
    listed = {p["pid"]: p for p in alias["processes"]}
    if set(listed) != set(expected_checkouts):
        return None
    if any(p["in_use"] or p["checkouts"] != expected_checkouts[pid] for pid, p in listed.items()):
        return None
    return alias


@pytest.mark.slow
def test_one_scrape_of_one_worker_shows_the_fleet(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with RedisServer(password=PASSWORD) as redis_server, log_path.open("w") as log:
        env = env_with(
            DJANGO_SETTINGS_MODULE="tests.prometheus_app",
            FLEET_REDIS_URL=redis_server.url,
            FLEET_PUBLISH_INTERVAL=str(INTERVAL),
        )
        command = [
            sys.executable, "-m", "gunicorn",
            "-c", "tests/fleet_gunicorn.py",
            "-w", str(WORKERS), "-k", "gthread", "--threads", str(THREADS),
            "-b", f"{LOOPBACK}:{port}",
            "--graceful-timeout", "5",
            "tests.prometheus_app:wsgi()",
        ]  # fmt: skip
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
        try:
            _prove(server, port, redis_server)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _prove(server: subprocess.Popen[bytes], port: int, redis_server: RedisServer) -> None:
    started = time.monotonic()
    workers = wait_for(
        lambda: len(children(server.pid)) == WORKERS and children(server.pid), 30, "workers"
    )
    wait_for(lambda: _answers(port), 30, "gunicorn to answer")
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        served = Counter(pool.map(lambda _: get(port, "/incr/"), range(REQUESTS)))
    assert set(served) <= workers
    checkouts = {pid: 1 + served[pid] for pid in workers}  # + the ping at worker start

    with override_settings(REDIS_POOL={"url": redis_server.url}):
        # Quiesced: no traffic, and every worker's snapshot has caught up with it.
        wait_for(lambda: settled(poolstats_json(), checkouts), 15, "snapshots of every worker")
        text = scrape(port)
        alias = poolstats_json()
    found = samples(text)
    assert pids(text) == workers  # 3 pid series, whichever worker answered
    for process in alias["processes"]:
        values = process_values(found, "default", process["pid"])
        assert values.pop("redis_pool_snapshot_age_seconds") >= 0
        assert values == {
            **expected(process),
            "redis_pool_server_connections": float(process["server_connections"]),
        }
        assert values["redis_pool_checkouts_total"] == checkouts[process["pid"]]
    per_alias = {
        name: v for (name, labels), v in found.items() if labels == (("alias", "default"),)
    }
    assert per_alias["redis_pool_processes"] == WORKERS
    assert per_alias["redis_pool_server_maxclients"] == alias["server"]["maxclients"]
    assert per_alias["redis_pool_budget_connections"] == alias["budget"]["worst_case"]
    _no_secret(text)

    # The process scope: only the worker that answered.
    process_text = scrape(port, "/metrics/redis-pool/process")
    assert len(pids(process_text)) == 1
    assert pids(process_text) <= workers

    # A worker killed with SIGKILL is gone from the scrape within the ttl.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: victim not in pids(scrape(port)), TTL + 1.5, "the dead worker to go")
    gone_after = time.monotonic() - killed
    assert gone_after <= TTL + 1.5
    print(f"\nkilled worker gone from the scrape after {gone_after:.2f}s (ttl {TTL}s)")
    assert time.monotonic() - started < 60


def _no_secret(text: str) -> None:
    assert PASSWORD not in text
    for _, labels in samples(text):
        for _, value in labels:
            assert PASSWORD not in value


def _answers(port: int) -> bool:
    try:
        get(port, "/plain/", timeout=1)
    except (OSError, AssertionError):
        return False
    return True
