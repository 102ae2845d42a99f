"""A real ASGI server: uvicorn serving ``tests.asgi_app`` with concurrent async views.

The process is asked to stop like a deployment would (SIGTERM). uvicorn closes its event
loop, which closes the loop's pools; the app then reports at exit and waits, so the test
can check on the Redis server that the still-running process holds no connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import LOOPBACK, RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
MAX_CONNECTIONS = 8
CONCURRENCY = 32


async def fetch(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def fetch_all(port: int, paths: list[str]) -> list[tuple[int, bytes]]:
    """GET every path, at most CONCURRENCY at a time, in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(path: str) -> tuple[int, bytes]:
        async with gate:
            return await fetch(port, path)

    return await asyncio.gather(*(one(path) for path in paths))


def ours(server: RedisServer, pid: int) -> list[dict[str, str]]:
    """The server's connections from the app's pools (sync or async), in process ``pid``."""
    return [
        c
        for c in server.clients_named("redis_pool:tests:default:")
        if c["name"].endswith(f":{pid}")
    ]


class Uvicorn:
    def __init__(self, redis_url: str, report: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.asgi_app.settings",
            "REDIS_URL": redis_url,
            "REDIS_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "ASGI_APP_REPORT": str(report),
            "PYTHONPATH": str(ROOT),
        }
        args = [
            sys.executable, "-X", "dev", "-W", "error::ResourceWarning",
            "-m", "uvicorn", "--factory", "django.core.asgi:get_asgi_application",
            "--host", LOOPBACK, "--port", str(self.port),
            "--loop", "asyncio", "--http", "h11", "--lifespan", "off",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.stderr()}")
            try:
                status, _ = asyncio.run(fetch(self.port, "/untouched/"))
            except OSError:
                time.sleep(0.05)
                continue
            assert status == 200
            return
        raise RuntimeError(f"uvicorn did not answer in {timeout}s")

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def server(fresh_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Uvicorn, Path]]:
    report = tmp_path / "report.json"
    app = Uvicorn(fresh_server.url, report)
    try:
        app.wait_ready()
        yield app, report
    finally:
        app.kill()


@pytest.mark.slow
def test_concurrent_async_views_under_uvicorn(
    server: tuple[Uvicorn, Path], fresh_server: RedisServer
) -> None:
    app, report_path = server
    pid = app.proc.pid

    async def load() -> dict[str, Any]:
        start = time.monotonic()
        echoes = await fetch_all(app.port, [f"/aecho/?v=e{i}" for i in range(200)])
        assert echoes == [(200, f"e{i}".encode()) for i in range(200)]
        holds = await fetch_all(app.port, [f"/ahold/?v=h{i}" for i in range(96)])
        assert holds == [(200, b"1")] * 96
        incrs = await fetch_all(app.port, ["/aincr/"] * 100 + ["/sync_incr/"] * 20)
        assert all(status == 200 for status, _ in incrs)
        assert sorted(int(body) for _, body in incrs[:100]) == list(range(1, 101))
        assert sorted(int(body) for _, body in incrs[100:]) == list(range(1, 21))
        elapsed = time.monotonic() - start
        status, body = await fetch(app.port, "/astats/")
        assert status == 200
        return {**json.loads(body), "elapsed": elapsed}

    stats = asyncio.run(load())
    assert stats["pid"] == pid
    (pool,) = stats["async"]  # one event loop, one pool
    assert pool["pool_class"] == "AsyncBlockingRedisPool"
    assert pool["max_connections"] == MAX_CONNECTIONS
    # 32 requests at a time against 8 connections: the pool is the limit, and holds.
    assert pool["created"] <= MAX_CONNECTIONS
    assert pool["high_water"] == MAX_CONNECTIONS
    assert pool["waits"] > 0
    assert (pool["exhausted"], pool["errors"], pool["in_use"]) == (0, 0, 0)
    # 200 echoes x 2 commands, 96 holds (one checkout each), 100 INCRs
    assert pool["checkouts"] == pool["releases"] == 200 * 2 + 96 + 100
    # Every server connection of the process is accounted for by its two pools.
    server_connections = len(ours(fresh_server, pid))
    assert server_connections == pool["open"] + stats["sync"]["open"]

    # Ctrl-C: uvicorn shuts down, asyncio's runner closes the loop, and the interpreter
    # exits normally (a SIGTERM is re-raised by uvicorn with the default action: the
    # process dies without closing anything, and the kernel closes the sockets).
    app.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 15
    while not report_path.exists():
        assert app.proc.poll() is None, app.stderr()
        assert time.monotonic() < deadline, "no report from the app at exit"
        time.sleep(0.05)
    report = json.loads(report_path.read_text())
    # The loop has closed, the process is still alive: its async pool is closed, not
    # merely dropped, and the server holds no connection of it.
    assert app.proc.poll() is None
    assert report["live"] == []
    (final,) = report["pools"]
    assert final["created"] == final["closed"] == pool["created"]
    assert (final["open"], final["in_use"]) == (0, 0)
    assert ours(fresh_server, pid) == []
    figures = {
        "requests": 416,
        "concurrency": CONCURRENCY,
        "seconds": round(stats["elapsed"], 2),
        "async_pool": {k: pool[k] for k in ("created", "high_water", "waits", "checkouts")},
        "async_wait_p95_ms": pool["wait"]["p95_ms"],
        "server_connections_under_load": server_connections,
        "server_connections_after_loop_close": 0,
        "closed_at_loop_close": final["closed"],
    }
    print(f"EVIDENCE asgi_uvicorn {json.dumps(figures, sort_keys=True)}")

    assert app.proc.stdin is not None
    app.proc.stdin.write(b"\n")
    app.proc.stdin.close()
    assert app.proc.wait(timeout=15) == 0
    stderr = app.stderr()
    assert "ResourceWarning" not in stderr
    assert "unclosed" not in stderr
