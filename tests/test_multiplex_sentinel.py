"""``MultiplexedRedis`` on a Sentinel alias's async pool: the shared connection finds the
master through the sentinels, as the pool's own connections do. Real servers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from redis_pool import aget_redis, aget_replica, aio
from redis_pool.multiplex import MultiplexedRedis
from tests.settings import REDIS_URL
from tests.topology_servers import SERVICE, SentinelSetup

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ha() -> Iterator[SentinelSetup]:
    setup = SentinelSetup(sentinels=1).start()
    try:
        options = {"sentinels": setup.addresses, "service_name": SERVICE}
        with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "ha": options}):
            yield setup
    finally:
        setup.cleanup()


def test_shared_connection_goes_to_the_master(ha: SentinelSetup) -> None:
    master = ha.current_master()

    async def main() -> tuple[list[int], int, int]:
        mux = MultiplexedRedis(aget_redis("ha").connection_pool)
        values = await asyncio.gather(*(mux.incr("sentinel-counter") for _ in range(50)))
        on_master = [
            c
            for c in master.clients_named("redis_pool:")
            if ":ha:" in c["name"] and c["name"].endswith(f":{os.getpid()}")
        ]
        blpop = await mux.blpop(["nothing"], timeout=0.05)  # a dedicated connection
        stats = mux.stats()
        await mux.aclose()
        return sorted(values), len(on_master), stats.connects + (blpop is not None)

    values, on_master, connects = asyncio.run(main())
    assert values == list(range(1, 51))
    assert on_master == 1  # the shared connection, on the master
    assert connects == 1


def test_multiplexed_sentinel_alias_wraps_master_and_replicas(ha: SentinelSetup) -> None:
    """``"multiplex": True`` on a Sentinel alias: ``aget_redis()`` shares one connection to
    the master, ``aget_replica()`` one to a replica; both closed with the loop."""
    options = {
        "sentinels": ha.addresses,
        "service_name": SERVICE,
        "multiplex": True,
        "max_connections": 4,
    }
    master = ha.current_master()
    replica_server = ha.server_on(ha.replica_server.port)

    def mine(server: Any) -> int:
        pid = os.getpid()
        return len(
            [c for c in server.clients_named("redis_pool:") if c["name"].endswith(f":{pid}")]
        )

    async def main() -> tuple[Any, ...]:
        client, replica = aget_redis("hamux"), aget_replica("hamux")
        await asyncio.gather(*(client.incr("mux-sentinel") for _ in range(40)))
        role = await replica.execute_command("ROLE")
        on = (mine(master), mine(replica_server))
        stats = aio.async_multiplex_stats("hamux")
        return client, replica, role[0], on, stats

    with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "hamux": options}):
        client, replica, role, on, stats = asyncio.run(main())
    assert isinstance(client, MultiplexedRedis)
    assert isinstance(replica, MultiplexedRedis)
    assert replica is not client
    assert role in (b"slave", "slave")  # the replica's shared connection is on a replica
    assert on == (1, 1)  # one shared connection on each, nothing else
    assert [s.connections for s in stats] == [1, 1]
    assert (mine(master), mine(replica_server)) == (0, 0)  # closed with the loop
