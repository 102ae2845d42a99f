from __future__ import annotations

from redis_pool import get_redis, pool_stats


def test_roundtrip() -> None:
    client = get_redis()
    client.set("k", "v")
    assert client.get("k") == b"v"
    stats = pool_stats()
    assert stats.created == 1
    assert stats.in_use == 0
    assert stats.checkouts == stats.releases == 2
