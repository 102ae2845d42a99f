"""A waiter interrupted by an exception (a signal handler raising, KeyboardInterrupt, Celery's
soft time limit, a gevent Timeout) gives its place in the blocking pool's queue back.

The interrupts are real SIGALRMs whose handler raises, delivered to the main thread (Python
runs signal handlers there) while it waits for a connection of a real redis-server.
Each test prints one ``EVIDENCE`` line (``pytest tests/test_interrupts.py -s | grep EVIDENCE``).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from redis_pool import PoolExhaustedError, get_pool, get_redis
from tests.redis_server import RedisServer

# Long enough that a waiter is surely still queued when its alarm fires, short enough that
# a lost slot shows as PoolExhaustedError quickly rather than as a hang.
POOL_TIMEOUT = 1.0
ALARM = 0.05


class Interrupted(Exception):
    """What the SIGALRM handler raises, as Celery's SoftTimeLimitExceeded would."""


class _Alarm:
    armed = False


@pytest.fixture
def alarm() -> Iterator[type[_Alarm]]:
    """SIGALRM raises ``Interrupted`` while ``_Alarm.armed``; the handler stays installed for
    the whole test, so a late signal never meets the default action (process exit)."""

    def handler(signum: int, frame: Any) -> None:
        if _Alarm.armed:
            _Alarm.armed = False
            raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        yield _Alarm
    finally:
        _Alarm.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def interrupted_wait(after: float = ALARM) -> bool:
    """A command through ``get_redis()`` that has to wait, interrupted by SIGALRM after
    ``after`` seconds. True if the interrupt reached it."""
    _Alarm.armed = True
    signal.setitimer(signal.ITIMER_REAL, after)
    try:
        get_redis().ping()
    except Interrupted:
        return True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _Alarm.armed = False
    return False


def usable_slots(limit: int) -> int:
    """How many connections can be checked out at once (all are returned after)."""
    pool = get_pool()
    held = []
    try:
        for _ in range(limit):
            try:
                held.append(pool.get_connection())
            except PoolExhaustedError:
                break
        return len(held)
    finally:
        for connection in held:
            pool.release(connection)


def evidence(name: str, **figures: Any) -> None:
    print(f"EVIDENCE {name} {json.dumps(figures, sort_keys=True)}")


@pytest.mark.parametrize("limit", [1, 4])
def test_interrupted_waiters_give_their_slot_back(
    redis_server: RedisServer, alarm: type[_Alarm], limit: int
) -> None:
    options = {"url": redis_server.url, "max_connections": limit, "pool_timeout": POOL_TIMEOUT}
    rounds = 2 * limit + 1  # one more than the bug needs to lose every slot
    with override_settings(REDIS_POOL=options):
        pool = get_pool()
        interrupts = 0
        for _ in range(rounds):
            # Every slot taken (as far as the pool still has them), so the command waits...
            held = [pool.get_connection() for _ in range(limit - pool.stats().in_use)]
            # ...and is interrupted while queued; then the holders return their connections.
            interrupts += interrupted_wait()
            for connection in held:
                pool.release(connection)
        in_use = pool.stats().in_use
        usable = usable_slots(limit)
        stats = pool.stats()
        evidence(
            f"interrupted_waiters_max{limit}",
            interrupts=interrupts,
            in_use_after=in_use,
            usable_slots=usable,
            waiting=stats.waiting,
            waits=stats.waits,
        )
        assert interrupts == rounds
        assert (in_use, usable, stats.waiting) == (0, limit, 0)
        # Every slot works for real commands too, from as many threads as there are slots.
        barrier = threading.Barrier(limit)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                barrier.wait(timeout=5)
                for i in range(20):
                    client = get_redis()
                    client.set(f"k{n}", i)
                    assert client.get(f"k{n}") == str(i).encode()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(limit)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert pool.stats().in_use == 0


def test_waiter_interrupted_after_a_connection_was_handed_to_it(
    redis_server: RedisServer, alarm: type[_Alarm]
) -> None:
    """The narrow case: a returned connection is already handed to the waiter when the
    interrupt lands. It must be passed on, not dropped with the waiter."""
    options = {"url": redis_server.url, "max_connections": 1, "pool_timeout": 5.0}
    main = threading.get_ident()
    with override_settings(REDIS_POOL=options):
        pool = get_pool()
        queue = pool.pool
        interrupts = 0
        for _ in range(3):
            held = pool.get_connection()
            failures: list[BaseException] = []

            def hand_over_then_interrupt(
                connection: Any = held, failures: list[BaseException] = failures
            ) -> None:
                try:
                    deadline = time.monotonic() + 5
                    while pool.stats().waiting == 0 and time.monotonic() < deadline:
                        time.sleep(0.005)
                    # Hand the connection to the queued waiter (what a return does, under
                    # the queue's lock) and interrupt it while it wakes up: holding the lock
                    # keeps it from leaving the queue before the signal lands.
                    with queue.mutex:
                        queue._put(connection)
                        _Alarm.armed = True
                        signal.pthread_kill(main, signal.SIGALRM)
                        time.sleep(0.05)
                except BaseException as exc:  # reported below
                    failures.append(exc)

            thread = threading.Thread(target=hand_over_then_interrupt)
            thread.start()
            try:
                get_redis().ping()
            except Interrupted:
                interrupts += 1
            thread.join(timeout=10)
            _Alarm.armed = False
            assert failures == []
        in_use = pool.stats().in_use
        usable = usable_slots(1)
        evidence("interrupted_after_hand_off", interrupts=interrupts, in_use_after=in_use)
        assert (in_use, usable) == (0, 1)
        assert get_redis().ping() is True
