"""Counting checkouts and returns inside redis-py's own critical sections: the plain pool's
in-use set (under the pool's lock) and the blocking pool's fair queue (under its mutex).

This is the hottest code of the app (benchmarks/bench_instrumentation.py holds it within
5% of redis-py's own cycle). A checkout is one clock read (``_rp_out``, the stamp a
return's hold time is measured from); a return is one clock read and ``Counters.held``.
See ``Counters`` for the accounting model.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic, perf_counter
from typing import Any

from redis_pool.exceptions import PoolExhaustedError
from redis_pool.pools.fair_queue import FairLifoQueue
from redis_pool.stats.counters import Counters
from redis_pool.stats.leaks import capture, note_late_return


class CountingSet(set[Any]):
    """The plain pool's in-use set. redis-py adds to it on checkout and removes from it on
    return, both under the pool's lock, so the counters need no lock of their own.

    No builtins bound as default arguments: CPython caches these global lookups, and
    a paired micro-benchmark of add + remove measured no difference (ratio 0.98-0.99,
    benchmarks/results/pools-internals.md)."""

    counters: Counters

    def add(self, connection: Any) -> None:
        set.add(self, connection)
        connection._rp_out = perf_counter()

    def remove(self, connection: Any) -> None:
        set.remove(self, connection)  # KeyError: not ours (redis-py ignores it), not counted
        self.counters.held(perf_counter() - connection._rp_out)


class LeakTrackingSet(CountingSet):
    """``CountingSet`` that also records where each checkout happened."""

    def add(self, connection: Any) -> None:
        super().add(connection)
        connection._rp_stack = capture()

    def remove(self, connection: Any) -> None:
        super().remove(connection)  # first: KeyError for a connection not ours
        out = connection._rp_out
        held = perf_counter() - out
        if held > self.counters.leak_limit:
            note_late_return(self.counters, connection, out, held)


class CountingFairLifoQueue(FairLifoQueue):
    """The blocking pool's queue: ``FairLifoQueue``, counting checkouts, returns and the
    callers that had to wait, under the queue's mutex.

    Free slots hold a connection or redis-py's ``None`` placeholder (redis-py makes the
    connection then: the pool's ``make_connection`` stamps it), so the in-use gauge is
    ``maxsize - len(queue)``. A wait that runs out raises ``PoolExhaustedError``.
    """

    def __init__(self, maxsize: int, pool: Any) -> None:
        super().__init__(maxsize)
        # Pre-filled with redis-py's "no connection yet" placeholders, so that redis-py's
        # own filling loop finds the queue full at once and no fill counts as a return.
        self.queue.extend([None] * maxsize)
        self.counters: Counters = pool.counters
        self.alias: str = pool.alias
        self.timeout: float | None = pool.timeout

    def _wait(self, block: bool, timeout: float | None) -> Any:
        counters = self.counters
        counters.waits += 1
        counters.waiting += 1
        start = monotonic()
        try:
            return super()._wait(block, timeout)
        except Empty:
            counters.wait_timeouts += 1
            counters.exhausted += 1
            raise PoolExhaustedError(self.alias, self.maxsize, self.timeout) from None
        finally:
            # A wait that ended empty-handed (or interrupted) is a wait too: the timing's
            # count is `waits`, so its total and mean include the timeouts.
            counters.waiting -= 1
            counters.waited(monotonic() - start)

    def _handed(self, item: Any) -> Any:
        # A returned connection handed to a waiter: a checkout (in use did not change).
        if item is not None:
            item._rp_out = perf_counter()
        return item

    def _get(self) -> Any:
        item = self.queue.pop()
        if item is not None:  # None: redis-py makes the connection (make_connection marks it)
            item._rp_out = perf_counter()
        return item

    def _put(self, item: Any) -> None:
        if item is None:
            # redis-py returns a placeholder for a connection it does not own: a return
            # without a hold time.
            self.counters.untimed_returns += 1
        else:
            self.counters.held(perf_counter() - item._rp_out)
        self._give(item)


class LeakTrackingFairLifoQueue(CountingFairLifoQueue):
    """``CountingFairLifoQueue`` that also records where each checkout happened."""

    def _get(self) -> Any:
        item = super()._get()
        if item is not None:
            item._rp_stack = capture()
        return item

    def _handed(self, item: Any) -> Any:
        item = super()._handed(item)
        if item is not None:
            item._rp_stack = capture()
        return item

    def _put(self, item: Any) -> None:
        out = getattr(item, "_rp_out", None)
        super()._put(item)
        if out is not None:
            held = perf_counter() - out
            if held > self.counters.leak_limit:
                note_late_return(self.counters, item, out, held)
