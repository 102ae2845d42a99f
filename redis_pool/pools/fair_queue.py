"""The blocking pool's queue: a returned connection goes to the longest waiter (first come,
first served), and an interrupted waiter never takes a slot with it."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from queue import LifoQueue
from time import monotonic, perf_counter
from typing import Any

from redis_pool.exceptions import PoolExhaustedError
from redis_pool.stats.leaks import capture, note_late_return

_NOTHING: Any = object()


class _Waiter:
    """One caller waiting for a connection: a returned one is handed to it directly."""

    __slots__ = ("item", "ready")

    def __init__(self, mutex: Any) -> None:
        self.ready = threading.Condition(mutex)
        self.item: Any = _NOTHING


class FairLifoQueue(LifoQueue[Any]):
    """The blocking pool's queue: fair to waiters, and counting checkouts, returns and
    callers that had to wait. Everything here runs under the queue's mutex.

    Fair: a returned connection goes straight to the longest waiter, first come first
    served, instead of back on the queue where the returning thread (still holding the
    GIL) would take it again on its next checkout and starve the waiters into
    ``PoolExhaustedError`` (redis-py's own queue does that). Free slots stay LIFO, so warm
    connections are reused first. Free slots hold a connection or redis-py's ``None``
    placeholder, so the in-use gauge is ``maxsize - len(queue)``.

    A waiter interrupted by any exception (a signal handler raising, KeyboardInterrupt,
    Celery's soft time limit, a gevent Timeout) leaves the line, and passes on a connection
    already handed to it: otherwise nobody would ever receive it and the slot is lost.
    """

    def __init__(self, maxsize: int, pool: Any) -> None:
        super().__init__(maxsize)
        # A reentrant mutex, for two reasons. Its Condition.wait() takes it back without
        # being interruptible (a plain Lock's can be interrupted by a signal handler that
        # raises, leaving the waiter outside the lock it must hold to leave the line). And
        # it knows its owner, so an interrupted waiter can make sure it holds it.
        self.mutex = threading.RLock()  # type: ignore[assignment]
        self.not_empty = threading.Condition(self.mutex)
        self.not_full = threading.Condition(self.mutex)
        self.all_tasks_done = threading.Condition(self.mutex)
        # Pre-filled with redis-py's "no connection yet" placeholders, so that redis-py's
        # own filling loop finds the queue full at once and no fill counts as a return.
        self.queue.extend([None] * maxsize)
        self.counters = pool.counters
        self.alias = pool.alias
        self.timeout: float | None = pool.timeout
        self.waiters: deque[_Waiter] = deque()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.mutex:
            if self.waiters or not self.queue:
                return self._wait(block, timeout)
            return self._get()

    def _wait(self, block: bool, timeout: float | None) -> Any:
        counters = self.counters
        counters.waits += 1
        counters.waiting += 1
        start = monotonic()
        timed = False
        waiter = _Waiter(self.mutex)
        self.waiters.append(waiter)
        try:
            deadline = None if (block and timeout is None) else start + (timeout or 0.0)
            while waiter.item is _NOTHING:
                if deadline is None:
                    waiter.ready.wait()
                    continue
                remaining = deadline - monotonic()
                if not block or remaining <= 0.0:
                    break
                waiter.ready.wait(remaining)
            # A wait that ended empty-handed is a wait too: the timing's count is `waits`,
            # so its total and mean include the timeouts.
            counters.waited(monotonic() - start)
            timed = True
            if waiter.item is _NOTHING:
                counters.wait_timeouts += 1
                counters.exhausted += 1
                raise PoolExhaustedError(self.alias, self.maxsize, self.timeout)
            return self._handed(waiter.item)
        except BaseException:
            self._withdraw(waiter)
            if not timed:
                counters.waited(monotonic() - start)
            raise
        finally:
            counters.waiting -= 1

    def _withdraw(self, waiter: _Waiter) -> None:
        """``waiter`` leaves the line (timed out or interrupted), passing on a connection
        that was handed to it meanwhile."""
        mutex: Any = self.mutex
        while not mutex._is_owned():
            # Interrupted where Condition.wait() had let go of the lock: take it back (and
            # keep it: get()'s ``with`` releases it). A second interrupt while doing so
            # must not stop this, the first one is already on its way to the caller.
            with contextlib.suppress(BaseException):
                mutex.acquire()
        item = waiter.item
        if item is _NOTHING:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            return
        waiter.item = _NOTHING
        # Handed out, so counted as returned by its previous holder; not used here: the
        # next waiter's or the queue's, as a return would have made it.
        if self.waiters:
            heir = self.waiters.popleft()
            heir.item = item
            heir.ready.notify()
        else:
            self.queue.append(item)

    def _handed(self, item: Any) -> Any:
        """A returned connection handed to a waiter: a checkout (in use did not change)."""
        if item is not None:
            item._rp_out = perf_counter()
        return item

    def _get(self) -> Any:
        item = self.queue.pop()
        if item is not None:  # None: redis-py makes the connection (make_connection marks it)
            item._rp_out = perf_counter()
        return item

    def _put(self, item: Any) -> None:
        counters = self.counters
        if item is None:
            # redis-py returns a placeholder for a connection it does not own: a return
            # without a hold time.
            counters.releases += 1
        else:
            counters.held(perf_counter() - item._rp_out)
        if self.waiters:
            waiter = self.waiters.popleft()
            waiter.item = item
            waiter.ready.notify()
        else:
            self.queue.append(item)


class LeakTrackingFairLifoQueue(FairLifoQueue):
    """``FairLifoQueue`` that also records where each checkout happened."""

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
