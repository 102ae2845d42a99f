"""A LIFO queue that hands a returned item to the longest waiter, first come first served,
and that an interrupted waiter never takes a slot away from: the blocking pool's queue
(``pools/counting.py`` adds the counting)."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from queue import Empty, LifoQueue
from time import monotonic
from typing import Any

_NOTHING: Any = object()


class _Waiter:
    """One caller waiting for an item: a returned one is handed to it directly."""

    __slots__ = ("item", "ready")

    def __init__(self, mutex: Any) -> None:
        self.ready = threading.Condition(mutex)
        self.item: Any = _NOTHING


class FairLifoQueue(LifoQueue[Any]):
    """A ``LifoQueue`` fair to its waiters, and safe for waiters that are interrupted.

    Fair: a returned item goes straight to the longest waiter, first come first served,
    instead of back on the queue where the returning thread (still holding the GIL) would
    take it again on its next ``get`` and starve the waiters into a timeout (redis-py's
    blocking pool, on a plain ``LifoQueue``, does that). Free items stay LIFO, so warm
    connections are reused first. A ``get`` queues behind anyone already waiting.

    Interruption-safe: a waiter interrupted by any exception (a signal handler raising,
    KeyboardInterrupt, Celery's soft time limit, a gevent Timeout) leaves the line and
    passes on an item already handed to it: otherwise nobody would ever receive it and
    the slot would be lost.

    A ``get`` that times out raises ``queue.Empty``, as ``LifoQueue``'s does. ``_wait``,
    ``_handed``, ``_get`` and ``_put`` run under the queue's mutex.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        # A reentrant mutex, for two reasons. Its Condition.wait() takes it back without
        # being interruptible (a plain Lock's can be interrupted by a signal handler that
        # raises, leaving the waiter outside the lock it must hold to leave the line). And
        # it knows its owner, so an interrupted waiter can make sure it holds it.
        self.mutex = threading.RLock()  # type: ignore[assignment]
        self.not_empty = threading.Condition(self.mutex)
        self.not_full = threading.Condition(self.mutex)
        self.all_tasks_done = threading.Condition(self.mutex)
        self.waiters: deque[_Waiter] = deque()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.mutex:
            if self.waiters or not self.queue:
                return self._wait(block, timeout)
            return self._get()

    def _wait(self, block: bool, timeout: float | None) -> Any:
        """Join the line; the item handed over, or ``Empty`` when ``timeout`` ran out."""
        waiter = _Waiter(self.mutex)
        self.waiters.append(waiter)
        try:
            deadline = None if (block and timeout is None) else monotonic() + (timeout or 0.0)
            while waiter.item is _NOTHING:
                if deadline is None:
                    waiter.ready.wait()
                    continue
                remaining = deadline - monotonic()
                if not block or remaining <= 0.0:
                    break
                waiter.ready.wait(remaining)
            if waiter.item is _NOTHING:
                raise Empty
            return self._handed(waiter.item)
        except BaseException:
            self._withdraw(waiter)
            raise

    def _withdraw(self, waiter: _Waiter) -> None:
        """``waiter`` leaves the line (timed out or interrupted), passing on an item that
        was handed to it meanwhile."""
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
        # Not used here: the next waiter's or the queue's, as a return would have made it.
        self._give(item)

    def _handed(self, item: Any) -> Any:
        """The item a waiter received (a subclass marks it checked out)."""
        return item

    def _put(self, item: Any) -> None:
        self._give(item)

    def _give(self, item: Any) -> None:
        """``item`` to the longest waiter, or back on the queue if nobody waits."""
        if self.waiters:
            waiter = self.waiters.popleft()
            waiter.item = item
            waiter.ready.notify()
        else:
            self.queue.append(item)
