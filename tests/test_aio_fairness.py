"""The async blocking pool serves waiting tasks first come, first served, as the sync pool
does (tests/test_interrupts.py, test_registry.py): a task that returns a connection and asks
again queues behind the tasks already waiting, instead of taking it straight back.

Prints ``EVIDENCE`` lines (``pytest tests/test_aio_fairness.py -s | grep EVIDENCE``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from django.test import override_settings

from redis_pool import PoolExhaustedError, aget_redis
from tests.redis_server import RedisServer

TASKS = 64
LIMIT = 8
SECONDS = 6.0
# A waiter served in turn waits for (TASKS - LIMIT) / LIMIT pairs: ~2 s even at the slowest
# seen here (dev mode, coverage and a loaded machine: 0.25 s a pair per connection). One that
# is overtaken again and again (redis-py's pool) waits until this runs out within SECONDS.
POOL_TIMEOUT = 5.0


def evidence(name: str, **figures: Any) -> None:
    print(f"EVIDENCE {name} {json.dumps(figures, sort_keys=True)}")


def test_tasks_beyond_max_connections_all_get_served(redis_server: RedisServer) -> None:
    options = {"url": redis_server.url, "max_connections": LIMIT, "pool_timeout": POOL_TIMEOUT}
    done = [0] * TASKS
    exhausted = [0] * TASKS
    errors: list[BaseException] = []

    async def worker(n: int, stop: float) -> None:
        key = f"fair:{n}"
        while time.monotonic() < stop:
            try:
                client = aget_redis()
                await client.set(key, done[n])
                assert await client.get(key) == str(done[n]).encode()
                done[n] += 1
            except PoolExhaustedError:
                exhausted[n] += 1
            except Exception as exc:  # reported below
                errors.append(exc)
                return

    async def main() -> dict[str, Any]:
        stop = time.monotonic() + SECONDS
        await asyncio.gather(*(worker(n, stop) for n in range(TASKS)))
        stats = aget_redis().connection_pool.stats()  # type: ignore[attr-defined]
        return {"in_use": stats.in_use, "waiting": stats.waiting, "created": stats.created}

    with override_settings(REDIS_POOL=options):
        after = asyncio.run(main())
    starved = sum(1 for n in range(TASKS) if exhausted[n])
    least, most = min(done), max(done)
    evidence(
        "aio_fairness",
        tasks=TASKS,
        max_connections=LIMIT,
        seconds=SECONDS,
        pairs=sum(done),
        tasks_with_exhausted=starved,
        exhausted=sum(exhausted),
        min_pairs=least,
        max_pairs=most,
        fairness=round(least / most, 3) if most else 0.0,
        **after,
    )
    assert errors == []
    assert (starved, sum(exhausted)) == (0, 0)
    assert least > 0
    assert after == {"in_use": 0, "waiting": 0, "created": LIMIT}


def test_cancelled_waiters_leave_the_line_and_pass_on_their_connection(
    redis_server: RedisServer,
) -> None:
    """A waiter cancelled before or after a connection was handed to it: the slot is not
    lost either way (the async twin of tests/test_interrupts.py)."""
    options = {"url": redis_server.url, "max_connections": 1, "pool_timeout": 5.0}

    async def main() -> None:
        client = aget_redis()
        pool: Any = client.connection_pool
        for _ in range(3):
            # Cancelled while queued, nothing handed to it yet.
            held = await pool.get_connection()
            waiter = asyncio.ensure_future(client.ping())
            await asyncio.sleep(0.01)
            assert pool.stats().waiting == 1
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            # Cancelled after the return handed it the connection, before it could run.
            waiter = asyncio.ensure_future(client.ping())
            await asyncio.sleep(0.01)
            await pool.release(held)
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            assert waiter.cancelled()
            stats = pool.stats()
            assert (stats.in_use, stats.waiting) == (0, 0)
        # The one slot still works, for a waiter too.
        held = await pool.get_connection()
        waiter = asyncio.ensure_future(client.ping())
        await asyncio.sleep(0.01)
        await pool.release(held)
        assert await asyncio.wait_for(waiter, 5) is True
        stats = pool.stats()
        assert (stats.in_use, stats.waiting, stats.created, stats.wait_timeouts) == (0, 0, 1, 0)

    with override_settings(REDIS_POOL=options):
        asyncio.run(main())
