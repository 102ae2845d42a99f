"""End to end: 256 concurrent requests to async Django views under uvicorn, through
``request.aredis`` on an alias with ``"multiplex": True``, all sharing one connection
(tests/multiplex_asgi.py). Real uvicorn, real redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.redis_server import LOOPBACK, RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


async def fetch(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_256_concurrent_requests_share_one_connection(fresh_server: RedisServer) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.multiplex_asgi",
        "REDIS_URL": fresh_server.url,
        "PYTHONPATH": str(ROOT),
    }
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "django.core.asgi:get_asgi_application",
        "--host", LOOPBACK, "--port", str(port), "--loop", "asyncio", "--http", "h11",
        "--lifespan", "off", "--no-access-log", "--log-level", "warning",
        "--backlog", "1024",
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "uvicorn exited"
            try:
                asyncio.run(fetch(port, "/untouched/"))
                break
            except OSError:
                assert time.monotonic() < deadline, "uvicorn did not answer"
                time.sleep(0.05)

        async def load() -> tuple[list[tuple[int, bytes]], int, dict[str, int]]:
            results = await asyncio.gather(*(fetch(port, f"/echo/?v=t{i}") for i in range(256)))
            named = fresh_server.clients_named("redis_pool:")
            status, body = await fetch(port, "/stats/")
            assert status == 200
            return results, len(named), json.loads(body)

        results, server_connections, stats = asyncio.run(load())
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert results == [(200, f"t{i}".encode()) for i in range(256)]  # zero errors
    assert stats["is_multiplexed"], stats["client_class"]  # request.aredis, from the setting
    assert stats["connections"] == 1
    assert stats["commands"] >= 256 * 2
    assert stats["mean_batch"] > 1  # requests' commands went out together
    assert stats["failed"] == 0
    # One shared connection plus the pool's connections that ran BLPOPs (26 of the
    # requests, at most 8 at a time: max_connections): never one per request.
    assert 1 + 1 <= server_connections <= 1 + 8
    assert stats["dedicated_max"] == 8
    evidence = {"server_connections": server_connections, **stats}
    print(f"EVIDENCE multiplex_uvicorn {json.dumps(evidence, sort_keys=True)}")
