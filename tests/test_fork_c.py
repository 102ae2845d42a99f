"""A fork that skips Python's at-fork hooks (uWSGI's prefork, a C extension, ``ctypes``'s
``libc.fork()``) still gives the child connections of its own.

``os.fork()`` runs ``os.register_at_fork`` hooks; a fork done from C does not. The pools'
fork check must not depend on them. tests/test_fork.py covers ``os.fork()``.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Callable

import pytest

from redis_pool import get_pool, get_redis
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks through glibc's fork()")


def _c_fork() -> int:
    # PyDLL keeps the GIL across the call (CDLL would release it, and a child forked while
    # another thread held it would deadlock): the child starts with the GIL, as after
    # os.fork(), but without any of Python's at-fork hooks.
    libc = ctypes.PyDLL(None)
    libc.fork.restype = ctypes.c_int
    return int(libc.fork())


def _in_c_forked_child(work: Callable[[], dict[str, object]]) -> dict[str, object]:
    read_fd, write_fd = os.pipe()
    pid = _c_fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 0
        try:
            os.close(read_fd)
            payload = json.dumps(work())
        except BaseException as exc:
            payload, code = json.dumps({"error": repr(exc)}), 1
        os.write(write_fd, payload.encode())
        os.close(write_fd)
        os._exit(code)
    assert pid > 0, "fork() failed"
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def test_child_forked_from_c_gets_its_own_connection(redis_server: RedisServer) -> None:
    client = get_redis()
    client.set("owner", "parent")
    parent_id = client.client_id()

    def child() -> dict[str, object]:
        mine = get_redis()
        wrong = 0
        for i in range(200):
            mine.set(f"child:{i}", i)
            if mine.get(f"child:{i}") != str(i).encode():
                wrong += 1
        stats = get_pool().stats()
        return {
            "pid_differs": os.getpid() != parent_pid,
            "client_id": mine.client_id(),
            "owner": mine.get("owner").decode(),  # type: ignore[union-attr]
            "wrong": wrong,
            "created_in_child": stats.created,
        }

    parent_pid = os.getpid()
    result = _in_c_forked_child(child)
    print(f"EVIDENCE c_fork parent_id={parent_id} child_id={result['client_id']}")
    assert result["pid_differs"] is True
    assert result["client_id"] != parent_id
    assert (result["owner"], result["wrong"], result["created_in_child"]) == ("parent", 0, 1)
    # The parent's connection was neither used nor closed by the child.
    assert client.client_id() == parent_id
    assert client.get("owner") == b"parent"


def test_parent_and_c_forked_child_work_at_once(redis_server: RedisServer) -> None:
    client = get_redis()
    client.ping()
    read_fd, write_fd = os.pipe()
    pid = _c_fork()
    if pid == 0:  # pragma: no cover
        os.close(read_fd)
        wrong = 0
        try:
            mine = get_redis()
            for i in range(300):
                mine.set(f"child:{i}", i)
                if mine.get(f"child:{i}") != str(i).encode():
                    wrong += 1
        except BaseException:
            wrong = -1
        finally:
            os.write(write_fd, json.dumps({"wrong": wrong}).encode())
            os._exit(0)
    os.close(write_fd)
    wrong = errors = 0
    for i in range(300):  # the parent works at the same time on its own connection
        try:
            client.set(f"parent:{i}", -i)
            if client.get(f"parent:{i}") != str(-i).encode():
                wrong += 1
        except Exception:
            errors += 1
    with os.fdopen(read_fd) as pipe:
        child_result = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert (wrong, errors) == (0, 0)
    assert child_result == {"wrong": 0}


def test_fork_check_where_the_kernel_has_no_fork_mark(redis_server: RedisServer) -> None:
    """Without MADV_WIPEONFORK (not Linux, an old kernel) the check asks for the pid."""
    pool = get_pool()
    get_redis().ping()
    pool._checkpid(None)  # type: ignore[union-attr]
    assert pool.stats().created == 1
    assert get_redis().ping() is True
