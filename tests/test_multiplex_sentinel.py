"""``MultiplexedRedis`` on a Sentinel alias's async pool: the shared connection finds the
master through the sentinels, as the pool's own connections do. Real servers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from django.test import override_settings

from redis_pool import aget_redis
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
