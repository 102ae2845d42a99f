"""The policies the sync and async topologies share, tested once.

``MasterCheck``: when a Sentinel master pool asks the sentinels who the master is (on a
clock of the test's: the policy reads ``monotonic`` from its module).

The sentinels' ``Retry`` (``sentinel_kwargs["retry"]``) keeps its backoff on both sides. The
async side converts the sync ``Retry`` of the settings (``pools.retry``); it used
to drop the backoff, so an async client retried a sentinel that was down back to back while
a sync one waited between attempts. No server is needed: the sentinel is a loopback port
nothing listens on, so each attempt is refused at once and the time spent is the backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from time import perf_counter

import pytest
from django.test import override_settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from redis_pool import aget_redis, get_redis
from redis_pool.pools.retry import async_retry
from redis_pool.registry import get_config
from redis_pool.topologies import sentinel
from redis_pool.topologies.build import build_async_topology, build_topology
from redis_pool.topologies.sentinel import (
    MASTER_CHECK_BACKOFF,
    MASTER_CHECK_INTERVAL,
    MasterCheck,
    SentinelTopology,
    build_sentinel,
)
from tests.redis_server import LOOPBACK, free_port
from tests.settings import REDIS_URL

BACKOFF = 0.2
RETRIES = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sentinel, "monotonic", clock)
    return clock


def ask(check: MasterCheck, error: Exception | None = None) -> None:
    with check.asking():
        if error is not None:
            raise error


def test_master_check_asks_at_most_once_per_interval(clock: Clock) -> None:
    check = MasterCheck()
    assert check.claim()
    ask(check)
    assert not check.claim()
    clock.now += MASTER_CHECK_INTERVAL - 0.01
    assert not check.claim()
    clock.now += 0.01
    assert check.claim()


@pytest.mark.parametrize("error", [RedisConnectionError("down"), RedisTimeoutError("slow")])
def test_master_check_backs_off_when_no_sentinel_answers(clock: Clock, error: Exception) -> None:
    check = MasterCheck()
    assert check.claim()
    ask(check, error)  # swallowed: the pool goes on with the connections it has
    clock.now += MASTER_CHECK_BACKOFF - 0.01
    assert not check.claim()
    clock.now += 0.01
    assert check.claim()


def test_master_check_one_asker_at_a_time(clock: Clock) -> None:
    check = MasterCheck()
    assert check.claim()
    clock.now += MASTER_CHECK_INTERVAL * 5  # due again, but the first asker is not done
    assert not check.claim()
    ask(check)  # the first asker done
    clock.now += MASTER_CHECK_INTERVAL
    assert check.claim()


def test_master_check_other_errors_propagate_without_backoff(clock: Clock) -> None:
    check = MasterCheck()
    assert check.claim()
    with pytest.raises(ValueError, match="a bug"):
        ask(check, ValueError("a bug"))
    clock.now += MASTER_CHECK_INTERVAL
    assert check.claim()  # released, and no backoff


@pytest.fixture
def down() -> Iterator[None]:
    options = {
        "sentinels": [(LOOPBACK, free_port())],
        "service_name": "nobody",
        "sentinel_kwargs": {"retry": Retry(ConstantBackoff(BACKOFF), RETRIES)},
    }
    with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "down": options}):
        yield


def test_sync_sentinels_back_off_between_retries(down: None) -> None:
    started = perf_counter()
    with pytest.raises(RedisConnectionError):
        get_redis("down").ping()
    # At least one discovery: RETRIES retries, each after BACKOFF seconds.
    assert perf_counter() - started >= RETRIES * BACKOFF * 0.9


def test_async_sentinels_back_off_between_retries(down: None) -> None:
    async def main() -> float:
        started = perf_counter()
        with pytest.raises(RedisConnectionError):
            await aget_redis("down").ping()
        return perf_counter() - started

    assert asyncio.run(main()) >= RETRIES * BACKOFF * 0.9


@pytest.mark.parametrize(("ssl", "managed"), [(False, "Connection"), (True, "SSLConnection")])
def test_sentinel_pools_take_the_transports_connection_class(ssl: bool, managed: str) -> None:
    # Constructs objects only: nothing listens on the sentinel's port.
    options = {"sentinels": [(LOOPBACK, free_port())], "service_name": "svc", "ssl": ssl}
    with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "ha": options}):
        config = get_config("ha")
        topology = SentinelTopology(config)
        entry = build_sentinel(config)
        try:
            for pool in [*topology.pools(), *entry.pools]:
                classes = [klass.__name__ for klass in pool.connection_class.__mro__]
                assert f"SentinelManaged{managed}" in classes
                assert ("SSLConnection" in classes) is ssl
        finally:
            topology.close()
            asyncio.run(entry.aclose())


def test_async_retry_converts_only_a_sync_retry() -> None:
    converted = async_retry(Retry(ConstantBackoff(BACKOFF), RETRIES))
    assert isinstance(converted, AsyncRetry)
    assert converted.get_retries() == RETRIES  # its backoff: the timed tests above
    already = AsyncRetry(ConstantBackoff(BACKOFF), RETRIES)
    assert async_retry(already) is already
    assert async_retry(None) is None


def test_build_refuses_a_standalone_alias() -> None:
    config = get_config("default")
    with pytest.raises(ValueError, match="not a Sentinel or Cluster alias"):
        build_topology(config)
    with pytest.raises(ValueError, match="not a Sentinel or Cluster alias"):
        build_async_topology(config)
