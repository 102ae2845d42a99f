"""The stats publisher and a server that refuses writes because it is a replica (READONLY).

Unlike an ACL refusal (tests/test_acl.py), a READONLY answer may mean the address now leads
to a demoted master: the publisher backs off, but reconnects for each attempt so that a
DNS-based failover reaches the new master.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
from django.test import override_settings

from redis_pool import get_redis, pool_stats
from tests.redis_server import LOOPBACK, RedisServer, free_port


def _received(server: RedisServer) -> int:
    info = server.command("INFO", "stats").decode()
    return int(re.search(r"total_connections_received:(\d+)", info)[1])  # type: ignore[index]


def test_readonly_replica_backs_off_and_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="redis_pool.stats")
    # A replica of a master that does not exist: it serves reads, refuses writes.
    with RedisServer("--replicaof", LOOPBACK, str(free_port())) as server:
        settings = {"default": {"url": server.url, "publish_interval": 0.2}}
        with override_settings(REDIS_POOL=settings):
            assert get_redis().get("k") is None
            deadline = time.monotonic() + 5
            while pool_stats().publish_errors == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            before = _received(server)
            time.sleep(3.0)
            opened = _received(server) - before - 1  # -1: INFO's own raw socket
            errors = pool_stats().publish_errors
    assert 2 <= errors <= 5  # backed off: 0.4, 0.8, 1.6 s... not every 0.2 s
    assert opened == errors - 1  # one new connection per attempt after the first
    assert [r.getMessage().count("ReadOnlyError") for r in caplog.records] == [1]
