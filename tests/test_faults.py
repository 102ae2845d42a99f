"""Faults against real redis-server processes: what the app does, and how fast it recovers.

Each test prints one ``EVIDENCE <name> {json}`` line with its measured figures;
``pytest tests/test_faults.py -s | grep EVIDENCE`` collects them for README, Evidence.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool import PoolExhaustedError, get_pool, get_redis, pool_stats
from redis_pool.config.defaults import default_retry
from tests.redis_server import LOOPBACK, RedisServer, env_with, free_port

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "redis_pool:tests:"  # our pools' client names start with this

# redis_pool's default Retry: its retry count and its backoff's base and cap (private in
# redis-py's ExponentialWithJitterBackoff, read here only to bound the test's timings).
_RETRY = default_retry()
RETRIES = _RETRY.get_retries()
BACKOFF_BASE: float = _RETRY._backoff._base
BACKOFF_CAP: float = _RETRY._backoff._cap


def evidence(name: str, **figures: Any) -> None:
    print(f"EVIDENCE {name} {json.dumps(figures, sort_keys=True)}")


def ours(server: RedisServer) -> list[dict[str, str]]:
    return server.clients_named(PREFIX)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; returns the seconds it took. Fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def options(server: RedisServer, **extra: Any) -> dict[str, Any]:
    return {"url": server.url, **extra}


# -- a real WSGI server in a subprocess ----------------------------------------------------


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str, float]:
    start = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, body, time.monotonic() - start
    finally:
        conn.close()


@contextmanager
def gunicorn(
    tmp_path: Path, redis_url: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Serve tests/serverapp.py with gunicorn; yields (port, process)."""
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    cmd = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{LOOPBACK}:{port}",
        "--no-control-socket",
        "--worker-class", "gthread",
        "--graceful-timeout", "5",
        *args,
        "django.core.wsgi:get_wsgi_application()",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env_with(
            DJANGO_SETTINGS_MODULE="tests.serverapp",
            REDIS_URL=redis_url,
            PYTHONPATH=str(ROOT),
            **(env or {}),
        ),
    )
    try:

        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited: {(tmp_path / 'gunicorn.log').read_text()}")
            try:
                return http_get(port, "/plain/", timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(answers, 30, "gunicorn to answer")
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


# -- Redis down when the app starts ----------------------------------------------------------


@pytest.mark.slow
def test_down_at_start_app_boots_and_recovers_without_restart(tmp_path: Path) -> None:
    server = RedisServer()  # its port is chosen, the process not started yet
    try:
        with gunicorn(tmp_path, server.url, "--workers", "1", "--threads", "2") as (port, proc):
            status, body, _ = http_get(port, "/plain/")
            assert (status, body) == (200, "ok")

            status, body, _ = http_get(port, "/incr/")
            exc_name, raised_after = body.split()
            assert status == 503
            assert exc_name == "ConnectionError"
            # Connection refused: the retries' backoff only, well inside the 1 s connect timeout.
            assert float(raised_after) < 1.0

            server.start()
            status, body, _ = http_get(port, "/incr/")
            assert (status, body) == (200, "1")
            assert proc.poll() is None  # same server process: no restart
        evidence("down_at_start", refused_error_after_s=float(raised_after))
    finally:
        server.cleanup()


def test_unreachable_host_fails_after_connect_timeout() -> None:
    # A listener whose accept queue is full drops SYNs: a host that does not answer,
    # without leaving loopback.
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((LOOPBACK, port))
            fillers.append(filler)
        time.sleep(0.05)  # let the handshakes of the fillers complete

        url = f"redis://{LOOPBACK}:{port}/0"
        with override_settings(REDIS_POOL={"url": url, "socket_connect_timeout": 0.3}):
            start = time.monotonic()
            with pytest.raises(RedisTimeoutError, match="Timeout connecting"):
                get_redis().ping()
            elapsed = time.monotonic() - start
            # Connect timeouts are not retried (a timeout already cost its full duration).
            assert 0.3 <= elapsed < 0.3 + 0.25
            stats = pool_stats()
            assert (stats.errors, stats.open, stats.in_use) == (1, 0, 0)
        evidence("unreachable", connect_timeout_s=0.3, failed_after_s=round(elapsed, 3))
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# -- kill -9 and restart under load ----------------------------------------------------------


@dataclass
class Op:
    start: float
    end: float
    error: str | None


def test_kill9_and_restart_under_load(fresh_server: RedisServer) -> None:
    threads, connect_timeout, socket_timeout, pool_timeout = 8, 0.5, 0.5, 1.0
    settings = options(
        fresh_server,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        pool_timeout=pool_timeout,
    )
    # The longest one operation may take when everything times out: a pool wait, then every
    # attempt of the outer (command) and inner (connect) retry loops, plus their backoff.
    attempts = (RETRIES + 1) ** 2
    worst = pool_timeout + attempts * (connect_timeout + socket_timeout)
    worst += (RETRIES + 1) * RETRIES * BACKOFF_CAP
    # But a killed server refuses connections at once, so no timeout elapses: only the
    # backoff of the nested retries can, plus slack for 8 threads on a small, busy CI box.
    backoff = sum(min(BACKOFF_CAP, BACKOFF_BASE * 2**i) for i in range(1, RETRIES + 1))
    bound = (RETRIES + 2) * backoff + 0.5

    ops: list[list[Op]] = [[] for _ in range(threads)]
    stop = threading.Event()
    t_up = [float("inf")]

    def worker(index: int) -> None:
        client = get_redis()
        mine = ops[index]
        for _ in range(200_000):  # bounded; the main thread sets `stop` well before
            if stop.is_set():
                return
            start = time.monotonic()
            try:
                client.incr(f"k{index}")
                error = None
            except RedisError as exc:
                error = type(exc).__name__
            mine.append(Op(start, time.monotonic(), error))

    def successes_after(moment: float) -> int:
        return min(sum(1 for op in m if op.start > moment and op.error is None) for m in ops)

    with override_settings(REDIS_POOL=settings):
        runners = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for runner in runners:
            runner.start()
        try:
            wait_for(lambda: successes_after(0) >= 50, 20, "steady load")
            # The pool may still be opening its last connections: read until both sides agree.
            wait_for(lambda: len(ours(fresh_server)) == pool_stats().open, 5, "a steady count")
            steady = pool_stats().open
            assert steady <= threads

            t_kill = time.monotonic()
            fresh_server.kill()
            wait_for(lambda: any(op.error for m in ops for op in m), 5, "errors after the kill")
            time.sleep(0.5)  # the outage: the server stays down this long
            fresh_server.start()
            t_up[0] = time.monotonic()
            wait_for(lambda: successes_after(t_up[0]) >= 50, 20, "load to recover")
        finally:
            stop.set()
            for runner in runners:
                runner.join(timeout=worst + 5)
        assert not any(runner.is_alive() for runner in runners)

        every = [op for m in ops for op in m]
        failed = [op for op in every if op.error]
        longest = max(op.end - op.start for op in every)
        assert longest < bound, f"an operation took {longest:.3f}s (bound {bound}s)"
        # Errors only inside the outage: each failed operation overlapped [kill, back up].
        assert failed
        assert all(op.end >= t_kill and op.start < t_up[0] for op in failed)
        assert {op.error for op in failed} <= {"ConnectionError", "TimeoutError"}
        first_ok = min(op.end for op in every if op.start >= t_up[0] and op.error is None)

        stats = pool_stats()
        assert stats.in_use == 0
        assert stats.checkouts == stats.releases
        server_side = len(ours(fresh_server))
        # No leak: the pool's own count matches the server's, and it is back at steady state.
        assert server_side == stats.open
        assert server_side <= max(steady, threads)
    evidence(
        "kill9",
        threads=threads,
        ops=len(every),
        failed_ops=len(failed),
        outage_s=round(t_up[0] - t_kill, 3),
        longest_op_s=round(longest, 3),
        bound_s=bound,
        worst_case_with_timeouts_s=worst,
        first_success_after_up_s=round(first_ok - t_up[0], 3),
        connections_before=steady,
        connections_after=server_side,
    )


# -- slow Redis ------------------------------------------------------------------------------


@pytest.fixture
def debug_server() -> Iterator[RedisServer]:
    with RedisServer("--enable-debug-command", "yes") as server:
        yield server


def _server_busy(server: RedisServer) -> bool:
    try:
        server.command("PING", timeout=0.05)
    except OSError:  # socket.timeout: the event loop is blocked
        return True
    return False


def test_debug_sleep_fails_after_socket_timeout_then_recovers(debug_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=options(debug_server, socket_timeout=0.3)):
        client = get_redis()
        client.set("k", "v")
        sleeper = socket.create_connection((LOOPBACK, debug_server.port))
        try:
            sleeper.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n1.5\r\n")
            wait_for(lambda: _server_busy(debug_server), 1, "DEBUG SLEEP to block the server")
            start = time.monotonic()
            with pytest.raises(RedisTimeoutError, match="Timeout reading"):
                client.get("k")
            elapsed = time.monotonic() - start
            sleeper.settimeout(5)
            assert sleeper.recv(64) == b"+OK\r\n"  # the sleep is over
        finally:
            sleeper.close()
        # Timeouts are not retried: one socket_timeout, not three.
        assert 0.3 <= elapsed < 0.3 + 0.25
        # The timed-out connection was dropped, so its late reply cannot answer a later
        # command: this INCR gets its own reply, not the stale b"v".
        assert client.incr("n") == 1
        stats = pool_stats()
        assert stats.in_use == 0
        assert stats.errors == 1
    evidence("debug_sleep", socket_timeout_s=0.3, failed_after_s=round(elapsed, 3))


def test_client_pause_fails_after_socket_timeout_then_recovers(
    fresh_server: RedisServer,
) -> None:
    with override_settings(REDIS_POOL=options(fresh_server, socket_timeout=0.3)):
        client = get_redis()
        client.set("k", "v")
        assert fresh_server.command("CLIENT", "PAUSE", "1000", "ALL") == b"+OK\r\n"
        start = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            client.get("k")
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 0.3 + 0.25
        fresh_server.command("CLIENT", "UNPAUSE")
        assert client.get("k") == b"v"
        assert pool_stats().in_use == 0
    evidence("client_pause", socket_timeout_s=0.3, failed_after_s=round(elapsed, 3))


# -- connections closed by the server --------------------------------------------------------


def _open_connections(count: int) -> None:
    """Make the current alias's pool hold ``count`` idle, connected connections."""
    pool = get_pool()
    held = [pool.get_connection() for _ in range(count)]
    for connection in held:
        pool.release(connection)


def _assert_dead_connections_reclaimed(server: RedisServer, count: int) -> None:
    # The pool is LIFO, so sequential use keeps reconnecting the same connection and the
    # other dead ones wait, unnoticed, in the pool (the stats count them open: the client
    # has not seen their EOF yet). Checking all of them out at once finds and replaces each.
    _open_connections(count)
    stats = pool_stats()
    assert len(ours(server)) == stats.open == count
    assert stats.closed == count
    assert stats.in_use == 0


def test_client_kill_next_use_recovers_transparently(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=options(fresh_server)):
        _open_connections(4)
        before = ours(fresh_server)
        assert len(before) == 4
        for client_info in before:
            fresh_server.command("CLIENT", "KILL", "ID", client_info["id"])
        wait_for(lambda: not ours(fresh_server), 5, "the server to drop our connections")

        client = get_redis()
        start = time.monotonic()
        # Every pooled connection is dead; each checkout finds one and must reconnect.
        results = [client.incr("n") for _ in range(8)]
        elapsed = time.monotonic() - start
        assert results == list(range(1, 9))
        assert pool_stats().in_use == 0
        _assert_dead_connections_reclaimed(fresh_server, 4)
    evidence("client_kill", killed=4, caller_errors=0, eight_ops_s=round(elapsed, 4))


def test_server_idle_timeout_reaping_recovers_transparently() -> None:
    with (
        RedisServer("--timeout", "1") as server,
        override_settings(REDIS_POOL=options(server)),
    ):
        _open_connections(3)
        assert len(ours(server)) == 3
        reaped_after = wait_for(lambda: not ours(server), 10, "idle reaping")
        client = get_redis()
        assert [client.incr("n") for _ in range(4)] == [1, 2, 3, 4]
        assert pool_stats().in_use == 0
        _assert_dead_connections_reclaimed(server, 3)
    evidence("idle_reaped", server_timeout_s=1, reaped_after_s=round(reaped_after, 2))


# -- pool exhausted --------------------------------------------------------------------------


@contextmanager
def holding_all(alias: str) -> Iterator[list[Any]]:
    pool = get_pool(alias)
    held = [pool.get_connection() for _ in range(pool.max_connections)]
    try:
        yield held
    finally:
        for connection in held:
            pool.release(connection)


def test_blocking_pool_waits_pool_timeout_then_names_alias_and_limit(
    fresh_server: RedisServer,
) -> None:
    pool_setting = {
        "default": options(fresh_server),
        "jobs": options(fresh_server, max_connections=2, pool_timeout=0.3),
    }
    with override_settings(REDIS_POOL=pool_setting), holding_all("jobs"):
        start = time.monotonic()
        with pytest.raises(PoolExhaustedError) as caught:
            get_redis("jobs").ping()
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 0.3 + 0.25
        message = str(caught.value)
        assert "'jobs'" in message
        assert "all 2 connections" in message
        assert "pool_timeout=0.3s" in message
        assert (caught.value.alias, caught.value.limit) == ("jobs", 2)
        stats = pool_stats("jobs")
        assert (stats.exhausted, stats.waits, stats.wait_timeouts) == (1, 1, 1)
        assert (stats.in_use, stats.waiting) == (2, 0)
    with override_settings(REDIS_POOL=pool_setting):
        assert get_redis("jobs").ping() is True
    evidence("blocking_exhausted", pool_timeout_s=0.3, raised_after_s=round(elapsed, 3))


def test_blocking_pool_waiter_gets_the_released_connection(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL=options(fresh_server, max_connections=1, pool_timeout=5)):
        pool = get_pool()
        held = pool.get_connection()
        released = threading.Timer(0.2, pool.release, args=(held,))
        released.start()
        start = time.monotonic()
        assert get_redis().ping() is True
        elapsed = time.monotonic() - start
        released.join()
        assert 0.2 <= elapsed < 5
        stats = pool_stats()
        assert (stats.waits, stats.wait_timeouts, stats.exhausted, stats.in_use) == (1, 0, 0, 0)


def test_plain_pool_raises_at_once_naming_alias_and_limit(fresh_server: RedisServer) -> None:
    pool_setting = {
        "default": options(fresh_server),
        "jobs": options(fresh_server, max_connections=2, pool_timeout=None),
    }
    with override_settings(REDIS_POOL=pool_setting), holding_all("jobs"):
        start = time.monotonic()
        with pytest.raises(PoolExhaustedError) as caught:
            get_redis("jobs").ping()
        elapsed = time.monotonic() - start
        assert elapsed < 0.1  # no waiting at all; the bound only absorbs scheduling noise
        message = str(caught.value)
        assert "'jobs'" in message
        assert "all 2 connections" in message
        assert "does not wait" in message
        stats = pool_stats("jobs")
        assert (stats.exhausted, stats.waits, stats.in_use) == (1, 0, 2)
    evidence("plain_exhausted", raised_after_s=round(elapsed, 4))


# -- server maxclients -----------------------------------------------------------------------


def test_maxclients_reached_clear_error_and_stats_show_why() -> None:
    with RedisServer("--maxclients", "2") as server:
        fillers = []
        try:
            for _ in range(2):
                filler = socket.create_connection((LOOPBACK, server.port), timeout=2)
                filler.sendall(b"PING\r\n")
                assert filler.recv(64) == b"+PONG\r\n"  # accepted: it holds a slot
                fillers.append(filler)
            with override_settings(REDIS_POOL=options(server)):
                with pytest.raises(RedisConnectionError, match="max number of clients reached"):
                    get_redis().ping()
                stats = pool_stats()
                assert stats.errors >= 1
                assert (stats.open, stats.in_use) == (0, 0)

                # The command says why, in its table and in its JSON, and exits non-zero.
                out = StringIO()
                with pytest.raises(CommandError, match="unreachable"):
                    call_command("redis_poolstats", stdout=out)
                assert "max number of clients reached" in out.getvalue()
                out = StringIO()
                with pytest.raises(CommandError, match="unreachable"):
                    call_command("redis_poolstats", "--json", stdout=out)
                rows = {row["alias"]: row for row in json.loads(out.getvalue())["aliases"]}
                assert "max number of clients reached" in rows["default"]["error"]
        finally:
            for filler in fillers:
                filler.close()
        # Slots free again: the next use connects, with no restart.
        with override_settings(REDIS_POOL=options(server)):
            wait_for(lambda: len(server.client_list()) == 1, 5, "fillers to disconnect")
            assert get_redis().ping() is True
    evidence("maxclients", error="ConnectionError: max number of clients reached")


# -- fork: gunicorn --preload with Redis used in the parent ----------------------------------

HOOK = """
def when_ready(server):
    # Runs in the master after --preload loaded Django: the master now holds an open,
    # pooled connection that every forked worker inherits.
    from redis_pool import get_redis
    get_redis().set("serverapp:parent", "1")
"""


@pytest.mark.slow
def test_fork_preload_workers_never_share_the_parents_connection(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    hook = tmp_path / "gunicorn_hooks.py"
    hook.write_text(HOOK)
    args = ("--preload", "--config", str(hook), "--workers", "3", "--threads", "4")
    with gunicorn(tmp_path, redis_server.url, *args) as (port, proc):
        assert redis_server.command("GET", "serverapp:parent") == b"$1\r\n1\r\n"

        def call(i: int) -> tuple[str, str]:
            token = f"t{i}-{os.urandom(4).hex()}"
            status, body, _ = http_get(port, f"/echo/?v={token}")
            assert status == 200, body
            return token, body

        with ThreadPoolExecutor(16) as executor:
            results = list(executor.map(call, range(600)))
        pids: dict[int, int] = {}
        for token, body in results:
            pid, echoed = body.split()
            assert echoed == token  # this request's own reply, never another's
            pids[int(pid)] = pids.get(int(pid), 0) + 1
        assert proc.pid not in pids
        assert len(pids) >= 2, f"only one worker served: {pids}"

        names = [c["name"] for c in redis_server.clients_named(PREFIX)]
        by_pid: dict[int, int] = {}
        for name in names:
            by_pid[int(name.rsplit(":", 1)[1])] = by_pid.get(int(name.rsplit(":", 1)[1]), 0) + 1
        # The master's connection is still its own (one), and each worker made its own.
        assert by_pid.get(proc.pid) == 1
        assert set(pids) <= set(by_pid)
    evidence(
        "fork",
        requests=len(results),
        requests_per_worker=sorted(pids.values()),
        connections_per_process=sorted(by_pid.values()),
    )
