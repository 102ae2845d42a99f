"""Helpers shared by the test modules: one copy of each, imported, never copied.

Test modules import from here (and from the harness modules ``redis_server`` and
``topology_servers``), never from one another; shared fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any, TypeVar

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from redis_pool import aio
from redis_pool.checks import check_settings
from tests.redis_server import LOOPBACK, RedisServer

T = TypeVar("T")

# An ACL user of the fleet tests: neither string may show up in any output.
USER, PASSWORD = "fleetuser_q7", "S3cretPw_z9"


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    An exception in ``retry_on`` counts as "not yet" (a server being reconfigured closes
    our probe); the last one is chained to the AssertionError raised after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = condition()
        except retry_on as exc:
            last = exc
        else:
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from last
        time.sleep(0.01)


def seconds_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    *,
    retry_on: tuple[type[Exception], ...] = (),
) -> float:
    """Like :func:`wait_for`, but returns the seconds it took."""
    start = time.monotonic()
    wait_for(condition, timeout, what, retry_on=retry_on)
    return time.monotonic() - start


def evidence(name: str, **figures: Any) -> None:
    """Print measured figures as one ``EVIDENCE name {json}`` line (kept with ``-s``)."""
    print(f"EVIDENCE {name} {json.dumps(figures, sort_keys=True)}")


def connections_received(server: RedisServer) -> int:
    """Connections the server ever accepted (each INFO asked here is one of them)."""
    info = server.command("INFO", "stats").decode()
    return int(re.search(r"total_connections_received:(\d+)", info)[1])  # type: ignore[index]


def check_results(value: Any, **extra: Any) -> list[tuple[str, str, str | None]]:
    """The system checks' (id, message, hint) for ``REDIS_POOL = value``."""
    with override_settings(REDIS_POOL=value, **extra):
        return [(m.id or "", m.msg, m.hint) for m in check_settings()]


def no_async_pools_left(*aliases: str) -> bool:
    """No event loop of this process holds a pool of any of ``aliases``."""
    return not any(aio.async_pool_stats(alias) for alias in aliases)


def run_command(*args: str, **options: Any) -> tuple[str, str, int]:
    """Run redis_poolstats in this process: (stdout, stderr, exit status)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("redis_poolstats", *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return out.getvalue(), f"CommandError: {exc}\n", exc.returncode
    return out.getvalue(), err.getvalue(), 0


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str, float]:
    """One GET on loopback: (status, body, seconds it took)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, body, time.monotonic() - start
    finally:
        conn.close()


def in_child(work: object) -> dict[str, object]:
    """Run ``work()`` in a forked child and return what it reports (JSON over a pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 0
        try:
            os.close(read_fd)
            payload = json.dumps(work())  # type: ignore[operator]
        except BaseException as exc:
            payload, code = json.dumps({"error": repr(exc)}), 1
        os.write(write_fd, payload.encode())
        os.close(write_fd)
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


@contextmanager
def holding(pool: Any, count: int) -> Iterator[list[Any]]:
    connections = [pool.get_connection() for _ in range(count)]
    try:
        yield connections
    finally:
        for connection in connections:
            pool.release(connection)


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
