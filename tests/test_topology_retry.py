"""The sentinels' ``Retry`` (``sentinel_kwargs["retry"]``) keeps its backoff on both sides.

The async side converts the sync ``Retry`` of the settings (``topologies.retry``); it used
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
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from redis_pool import aget_redis, get_redis
from tests.redis_server import LOOPBACK, free_port
from tests.settings import REDIS_URL

BACKOFF = 0.2
RETRIES = 2


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
