"""The cache backend on a Sentinel alias (the master, found through real sentinels), and
its refusal of a Cluster alias."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from redis_pool import pool_stats
from redis_pool.cache import RedisCache
from tests.redis_server import free_port
from tests.settings import REDIS_URL
from tests.topology_servers import SERVICE, SentinelSetup, text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ha() -> Iterator[SentinelSetup]:
    topology = SentinelSetup(sentinels=2).start()
    try:
        aliases = {
            "default": {"url": REDIS_URL},
            "ha": {"sentinels": topology.addresses, "service_name": SERVICE},
        }
        with override_settings(REDIS_POOL=aliases):
            yield topology
    finally:
        topology.cleanup()


def test_cache_on_a_sentinel_alias_writes_to_the_master(ha: SentinelSetup) -> None:
    cache = RedisCache("ha", {"KEY_PREFIX": "s"})
    before = pool_stats("ha").checkouts
    cache.set("k", {"v": 1})
    cache.set("n", 1)
    assert cache.incr("n") == 2
    assert cache.get("k") == {"v": 1}
    assert b"\x80" in ha.current_master().command("GET", "s:1:k")  # a pickle, on the master
    assert text(ha.current_master().command("GET", "s:1:n")).endswith("2\r\n")
    assert pool_stats("ha").checkouts >= before + 4

    async def scenario() -> None:
        await cache.aset("a", [1, 2])
        assert await cache.aget_many(["a", "k"]) == {"a": [1, 2], "k": {"v": 1}}

    asyncio.run(scenario())
    cache.clear()
    assert cache.get("k") is None


def test_a_cluster_alias_is_refused() -> None:
    # Loading a Cluster alias asks nothing of the cluster, so no server is needed.
    aliases = {
        "default": {"url": REDIS_URL},
        "c": {"url": f"redis+cluster://127.0.0.1:{free_port()}"},
    }
    with (
        override_settings(REDIS_POOL=aliases),
        pytest.raises(ImproperlyConfigured, match="Redis Cluster alias"),
    ):
        RedisCache("c", {})
