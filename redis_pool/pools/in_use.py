"""The plain pool's in-use set, counting checkouts and returns under redis-py's own lock."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from redis_pool.stats.counters import Counters
from redis_pool.stats.leaks import capture, note_late_return


class CountingSet(set[Any]):
    """The plain pool's in-use set. redis-py adds to it on checkout and removes from it on
    return, both under the pool's lock, so the counters need no lock of their own.

    This is the hottest code of the app (benchmarks/bench_instrumentation.py holds it
    within 5% of redis-py's own cycle), hence the builtins bound as defaults: a checkout
    is one clock read; a return is one clock read and ``Counters.held``. The
    in-use gauge is the set's size, checkouts are returns plus it, and the high-water mark
    is the number of connections the pool made (see ``InstrumentedPoolMixin.stats``).
    """

    counters: Counters

    def add(self, connection: Any, _add: Any = set.add, _clock: Any = perf_counter) -> None:
        _add(self, connection)
        connection._rp_out = _clock()

    def remove(
        self, connection: Any, _remove: Any = set.remove, _clock: Any = perf_counter
    ) -> None:
        _remove(self, connection)  # KeyError: not ours (redis-py ignores it), not counted
        self.counters.held(_clock() - connection._rp_out)


class LeakTrackingSet(CountingSet):
    """``CountingSet`` that also records where each checkout happened."""

    def add(self, connection: Any, *args: Any) -> None:
        super().add(connection)
        connection._rp_stack = capture()

    def remove(self, connection: Any, *args: Any) -> None:
        super().remove(connection)  # first: KeyError for a connection not ours
        out = connection._rp_out
        held = perf_counter() - out
        if held > self.counters.leak_limit:
            note_late_return(self.counters, connection, out, held)
