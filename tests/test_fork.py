"""A pool built (and used) in a parent is never used by two processes after os.fork().

The gunicorn --preload proof runs in test_faults.py.
"""

from __future__ import annotations

import json
import os
import socket

from redis_pool import get_pool, get_redis
from tests.helpers import in_child
from tests.redis_server import RedisServer


def test_child_gets_its_own_connection_and_counters(redis_server: RedisServer) -> None:
    client = get_redis()
    client.set("owner", "parent")
    parent_id = client.client_id()
    assert get_pool().stats().created == 1

    def child() -> dict[str, object]:
        fresh_stats = get_pool().stats()
        child_client = get_redis()
        return {
            "same_client_object": child_client is client,
            "stats_before_use": [fresh_stats.created, fresh_stats.checkouts],
            "client_id": child_client.client_id(),
            "name": child_client.client_getname(),
            "owner": child_client.get("owner").decode(),  # type: ignore[union-attr]
            "stats_after_use": [get_pool().stats().created, get_pool().stats().in_use],
        }

    result = in_child(child)
    host = socket.gethostname().split(".")[0]
    assert result["same_client_object"] is True  # the registry is inherited...
    assert result["stats_before_use"] == [0, 0]  # ...but not the parent's counts
    assert result["client_id"] != parent_id  # ...nor the parent's socket
    name = str(result["name"])
    assert name.startswith(f"redis_pool:tests:default:{host}:")
    assert name != f"redis_pool:tests:default:{host}:{os.getpid()}"
    assert result["owner"] == "parent"
    assert result["stats_after_use"] == [1, 0]
    # The parent's connection survived the child's exit untouched.
    assert client.client_id() == parent_id
    assert client.get("owner") == b"parent"
    assert get_pool().stats().created == 1


def test_interleaved_use_keeps_replies_apart(redis_server: RedisServer) -> None:
    client = get_redis()
    client.ping()

    def child() -> dict[str, object]:
        mine = get_redis()
        wrong = 0
        for i in range(500):
            mine.set(f"child:{i}", i)
            if mine.get(f"child:{i}") != str(i).encode():
                wrong += 1
        return {"wrong": wrong}

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os.close(read_fd)
        try:
            os.write(write_fd, json.dumps(child()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    wrong = 0
    for i in range(500):  # the parent works at the same time on its own connection
        client.set(f"parent:{i}", -i)
        if client.get(f"parent:{i}") != str(-i).encode():
            wrong += 1
    with os.fdopen(read_fd) as pipe:
        child_result = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert wrong == 0
    assert child_result == {"wrong": 0}
