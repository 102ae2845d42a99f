"""Cluster aliases against a real local cluster of three masters (shared by the session)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from redis.cluster import RedisCluster
from redis.crc import key_slot

from redis_pool import ClusterUnavailableError, PoolExhaustedError, get_redis
from redis_pool.registry import (
    get_config,
    get_pool,
    get_replica,
    node_pools,
    node_stats,
    pool_stats,
)
from redis_pool.topologies.build import build_async_topology
from redis_pool.topologies.cluster import AsyncClusterEntry
from tests.helpers import wait_for
from tests.redis_server import free_port
from tests.settings import REDIS_URL
from tests.topology_servers import ClusterSetup, text

pytestmark = pytest.mark.slow

PREFIX = "redis_pool:tests:c:"  # the default client name of alias "c"


@pytest.fixture(autouse=True)
def _flush(cluster: ClusterSetup) -> None:
    for node in cluster.nodes:
        node.command("FLUSHALL")


def options(cluster: ClusterSetup, **extra: Any) -> dict[str, Any]:
    return {"url": f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}", **extra}


def settings_with(**aliases: dict[str, Any]) -> Any:
    return override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, **aliases})


@pytest.fixture
def c(cluster: ClusterSetup) -> Iterator[ClusterSetup]:
    with settings_with(c=options(cluster)):
        yield cluster


def ours(cluster: ClusterSetup) -> int:
    return sum(len(node.clients_named(PREFIX)) for node in cluster.nodes)


def keys_for_slots(slots: set[int]) -> dict[int, str]:
    """A key for each of ``slots`` (hash slots are CRC16 of the key mod 16384)."""
    found: dict[int, str] = {}
    for n in range(1_000_000):  # bounded; ~50,000 tries find 9 slots
        key = f"key:{n}"
        slot = key_slot(key.encode())
        if slot in slots and slot not in found:
            found[slot] = key
            if len(found) == len(slots):
                return found
    raise AssertionError("slots not found")


def key_on(cluster: ClusterSetup, port: int) -> str:
    low, _ = cluster.slot_ranges()[port][0]
    return keys_for_slots({low})[low]


def test_built_on_first_use_not_at_start(c: ClusterSetup) -> None:
    # Loading the settings asked nothing of the cluster.
    assert node_pools("c") == []
    assert ours(c) == 0
    client = get_redis("c")
    assert isinstance(client, RedisCluster)
    assert get_redis("c") is client
    assert get_replica("c") is client
    assert len(node_pools("c")) == 3


def test_keys_on_every_slot_range(c: ClusterSetup) -> None:
    client = get_redis("c")
    owner: dict[int, int] = {}
    for port, ranges in c.slot_ranges().items():
        for low, high in ranges:
            for slot in (low, (low + high) // 2, high):
                owner[slot] = port
    assert len({port for port in owner.values()}) == 3
    keys = keys_for_slots(set(owner))
    for slot, key in keys.items():
        client.set(key, str(owner[slot]))
    for slot, key in keys.items():
        assert client.get(key) == str(owner[slot]).encode()
        # On the node that owns the slot, asked directly (a raw socket, no redirection).
        node = c.node_on(owner[slot])
        assert text(node.command("GET", key)).endswith(f"{owner[slot]}\r\n")
    # Every node pool was used, and each connection went to its own node.
    stats = node_stats("c")
    assert [s.address for s in stats] == sorted(f"redis://127.0.0.1:{p}" for p in c.slot_ranges())
    assert all(s.checkouts >= 3 for s in stats)
    for node in c.nodes:
        assert len(node.clients_named(PREFIX)) == 1


def test_max_connections_and_timeouts_apply_per_node(cluster: ClusterSetup) -> None:
    extra = {"max_connections": 2, "pool_timeout": None, "socket_timeout": 1.5}
    with settings_with(c=options(cluster, **extra)):
        client = get_redis("c")
        pools = node_pools("c")
        assert [p.max_connections for p in pools] == [2, 2, 2]
        for pool in pools:
            assert pool.connection_kwargs["socket_timeout"] == 1.5
            assert pool.connection_kwargs["socket_connect_timeout"] == 2.0
            # RedisCluster drops this one from the node keywords; our node pools keep it.
            assert pool.connection_kwargs["health_check_interval"] == 30
        port_a, port_b = cluster.nodes[0].port, cluster.nodes[1].port
        key_a, key_b = key_on(cluster, port_a), key_on(cluster, port_b)
        pool_a = client.get_node_from_key(key_a).redis_connection.connection_pool  # type: ignore[no-untyped-call]
        held = [pool_a.get_connection() for _ in range(2)]
        try:
            with pytest.raises(PoolExhaustedError, match="'c' is exhausted: all 2 connections"):
                client.get(key_a)
            # The other nodes have budgets of their own.
            client.set(key_b, "ok")
            assert client.get(key_b) == b"ok"
        finally:
            for connection in held:
                pool_a.release(connection)
        client.set(key_a, "ok")
        by_address = {s.address: s for s in node_stats("c")}
        assert by_address[f"redis://127.0.0.1:{port_a}"].exhausted == 1
        assert by_address[f"redis://127.0.0.1:{port_b}"].exhausted == 0


def test_blocking_node_pools_wait_then_fail(cluster: ClusterSetup) -> None:
    with settings_with(c=options(cluster, max_connections=1, pool_timeout=0.2)):
        client = get_redis("c")
        port = cluster.nodes[2].port
        key = key_on(cluster, port)
        pool = client.get_node_from_key(key).redis_connection.connection_pool  # type: ignore[no-untyped-call]
        held = pool.get_connection()
        try:
            start = time.monotonic()
            with pytest.raises(PoolExhaustedError, match=r"within pool_timeout=0\.2s"):
                client.get(key)
            assert 0.2 <= time.monotonic() - start < 2.0
        finally:
            pool.release(held)
        assert client.get(key) is None


def test_stats_per_node_and_added_up(c: ClusterSetup) -> None:
    client = get_redis("c")
    for port in c.slot_ranges():
        client.set(key_on(c, port), "1")
    nodes = node_stats("c")
    total = pool_stats("c")
    assert len(nodes) == 3
    assert {s.pool_class for s in nodes} == {"ClusterBlockingRedisPool"}
    assert total.address == f"redis+cluster://127.0.0.1:{c.nodes[0].port}"
    assert total.max_connections == 3 * 32
    assert total.checkouts == sum(s.checkouts for s in nodes)
    assert total.open == sum(s.open for s in nodes) >= 3
    with pytest.raises(TypeError, match="one pool per node"):
        get_pool("c")


def test_middleware(c: ClusterSetup) -> None:
    with override_settings(REDIS_POOL_MIDDLEWARE_ALIAS="c"):
        assert Client().get("/incr/").content == b"1"
        assert Client().get("/incr/").content == b"2"
    assert get_redis("c").get("hits") == b"2"


def test_settings_change_closes_every_node_pool(cluster: ClusterSetup) -> None:
    with settings_with(c=options(cluster)):
        client = get_redis("c")
        for port in cluster.slot_ranges():
            client.set(key_on(cluster, port), "1")
        assert ours(cluster) == 3
    wait_for(lambda: ours(cluster) == 0, 5, "the node connections to close", retry_on=(OSError,))


def test_unreachable_cluster_fails_clearly_and_retries_later(cluster: ClusterSetup) -> None:
    port = free_port()
    with settings_with(c={"url": f"redis+cluster://127.0.0.1:{port}"}):
        start = time.monotonic()
        with pytest.raises(ClusterUnavailableError) as caught:
            get_redis("c")
        assert time.monotonic() - start < 5
        message = str(caught.value)
        assert message.startswith(
            f"Redis Cluster alias 'c' (redis+cluster://127.0.0.1:{port}) is unavailable: "
        )
        assert message.endswith("get_redis() will try again on its next call.")
        assert node_pools("c") == []
        # The next call tries again (and fails again: nothing listens there).
        with pytest.raises(ClusterUnavailableError):
            get_redis("c")


def test_async_builder(c: ClusterSetup) -> None:
    """redis_pool.topologies.cluster: what aget_redis() builds for a Cluster alias, per loop."""
    ports = sorted(c.slot_ranges())

    async def main() -> None:
        entry = build_async_topology(get_config("c"))
        assert isinstance(entry, AsyncClusterEntry)
        assert ours(c) == 0  # built without touching the network
        try:
            for port in ports:
                await entry.client.set(key_on(c, port), str(port))
            for port in ports:
                assert await entry.client.get(key_on(c, port)) == str(port).encode()
                assert text(c.node_on(port).command("GET", key_on(c, port))).endswith(f"{port}\r\n")
            stats = entry.stats()
            assert [s.address for s in stats] == [f"redis://127.0.0.1:{p}" for p in ports]
            assert all(s.created >= 1 and s.max_connections == 32 for s in stats)
            assert all(n.max_connections == 32 for n in entry.client.get_nodes())
            assert ours(c) >= 3
        finally:
            await entry.aclose()
        assert not entry.connected()

    asyncio.run(main())
    wait_for(lambda: ours(c) == 0, 5, "the async node connections to close", retry_on=(OSError,))


def test_redis_poolstats_shows_the_node_pools(c: ClusterSetup) -> None:
    client = get_redis("c")
    for port in c.slot_ranges():
        client.set(key_on(c, port), "1")
    out = StringIO()
    call_command("redis_poolstats", "--alias", "c", "--local", "--json", stdout=out)
    [row] = json.loads(out.getvalue())["aliases"]
    ports = sorted(c.slot_ranges())
    assert [n["address"] for n in row["nodes"]] == [f"redis://127.0.0.1:{p}" for p in ports]
    assert row["checkouts"] == sum(n["checkouts"] for n in row["nodes"])
    assert row["max_connections"] == 96
    table = StringIO()
    call_command("redis_poolstats", "--alias", "c", "--local", stdout=table)
    lines = [line for line in table.getvalue().splitlines() if line.startswith("  node ")]
    assert [line.split()[1] for line in lines] == [f"redis://127.0.0.1:{p}:" for p in ports]
    assert all(", max 32, " in line for line in lines)
