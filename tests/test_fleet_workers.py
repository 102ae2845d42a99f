"""The proof with real processes: gunicorn (3 workers x 4 threads, --preload, Redis used in
the master before it forks) against a real redis-server; ``redis_poolstats --json`` lists
every worker with counts that add up to the requests served and to what the server
reports, and a worker killed with SIGKILL disappears within the snapshot's ttl."""

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
from django.test import override_settings

from redis_pool import monitor
from redis_pool.config.defaults import hostname
from tests.redis_server import LOOPBACK, RedisServer, env_with, free_port
from tests.test_poolstats_command import run_command
from tests.test_stats import wait_for

ROOT = Path(__file__).resolve().parent.parent
WORKERS, THREADS, REQUESTS, CONCURRENCY, HOLDS = 3, 4, 240, 12, 4
INTERVAL = 0.5
TTL = monitor.ttl_seconds(INTERVAL)


def get(port: int, path: str, timeout: float = 10) -> int:
    """One request; returns the pid of the worker that served it."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body[:500]
        return int(body)
    finally:
        connection.close()


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def fleet() -> dict[str, Any]:
    out, err, status = run_command("--json")
    assert status == 0, err
    [alias] = json.loads(out)["aliases"]
    assert alias["error"] is None
    return alias  # type: ignore[no-any-return]


def by_pid(alias: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["pid"]: p for p in alias["processes"]}


@pytest.mark.slow
def test_gunicorn_workers_in_the_fleet_view(fresh_server: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    env = env_with(
        DJANGO_SETTINGS_MODULE="tests.fleet_app",
        FLEET_REDIS_URL=fresh_server.url,
        FLEET_PUBLISH_INTERVAL=str(INTERVAL),
        FLEET_USE_IN_MASTER="1",
    )
    command = [
        sys.executable, "-m", "gunicorn",
        "-c", "tests/fleet_gunicorn.py",
        "--preload",
        "-w", str(WORKERS), "-k", "gthread", "--threads", str(THREADS),
        "-b", f"{LOOPBACK}:{port}",
        "--graceful-timeout", "5",
        "tests.fleet_app:wsgi()",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    started = time.monotonic()
    try:
        workers = wait_for(
            lambda: len(children(server.pid)) == WORKERS and children(server.pid), 20, "workers"
        )
        wait_for(lambda: _answers(port), 20, "gunicorn to answer")
        # Bounded concurrent load: REQUESTS requests, CONCURRENCY at a time.
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            served = Counter(pool.map(lambda _: get(port, "/incr/"), range(REQUESTS)))
        assert set(served) <= workers
        expected = {pid: 1 + served[pid] for pid in workers}  # + the ping at worker start
        expected[server.pid] = 1  # the master's ping before it forked

        with override_settings(REDIS_POOL={"url": fresh_server.url}):
            # Each process's snapshot catches up with what it served.
            alias = wait_for(lambda: _settled(fleet(), expected), 10, "snapshots of every process")
            listed = by_pid(alias)
            assert set(listed) == workers | {server.pid}
            _check_against_server(fresh_server, alias)

            # Connections held by in-flight requests show as in use, where they are.
            with ThreadPoolExecutor(HOLDS) as pool:
                holds = [pool.submit(get, port, "/hold/?s=3") for _ in range(HOLDS)]
                alias = wait_for(
                    lambda: (a := fleet())["totals"]["in_use"] == HOLDS and a, 5, "the holds"
                )
                for pid, process in by_pid(alias).items():
                    assert 0 <= process["in_use"] <= process["max_connections"] == 8
                    assert process["checkouts"] - process["in_use"] == expected[pid]
                    assert process["high_water"] >= max(1, process["in_use"])
                _check_against_server(fresh_server, alias)
                hold_pids = Counter(f.result(timeout=10) for f in holds)
            assert sum(hold_pids.values()) == HOLDS

            # A worker killed with SIGKILL leaves the listing within the ttl.
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(lambda: victim not in by_pid(fleet()), TTL + 1.5, "the dead worker to go")
            gone_after = time.monotonic() - killed
            assert gone_after <= TTL + 1.5
            # gunicorn replaced it; the replacement shows up by itself.
            replacement = wait_for(
                lambda: (children(server.pid) - workers) or None, 10, "a replacement worker"
            )
            wait_for(lambda: replacement <= set(by_pid(fleet())), 10, "the replacement")
        print(f"\nkilled worker gone from the listing after {gone_after:.2f}s (ttl {TTL}s)")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    # A clean shutdown deleted the snapshots at once (the killed worker's expired).
    keys = fresh_server.command("KEYS", "redis_pool:stats:default:*")
    assert keys == b"*0\r\n", (keys, (tmp_path / "gunicorn.log").read_text()[-2000:])
    assert time.monotonic() - started < 30


def _answers(port: int) -> bool:
    try:
        get(port, "/plain/", timeout=1)
    except (OSError, AssertionError):
        return False
    return True


def _settled(alias: dict[str, Any], expected: dict[int, int]) -> dict[str, Any] | None:
    """The listing, once every process has published its checkouts so far."""
    listed = by_pid(alias)
    if set(listed) != set(expected):
        return None
    for pid, process in listed.items():
        if process["in_use"] or process["checkouts"] != expected[pid]:
            return None
    return alias


def _check_against_server(server: RedisServer, alias: dict[str, Any]) -> None:
    """Each process's open connections = the server's connections with its client name."""
    on_server = Counter(c["name"] for c in server.clients_named("redis_pool:tests:default:"))
    total = 0
    for process in alias["processes"]:
        name = process["client_name"]
        assert name == f"redis_pool:tests:default:{hostname()}:{process['pid']}"
        assert process["server_connections"] == on_server[name] == process["open"]
        assert process["created"] >= process["open"] >= 1
        total += process["open"]
    assert alias["totals"]["server_connections"] == total == sum(on_server.values())
