"""A FIFO counting limit on commands in flight, for one multiplexed connection.

``asyncio.Semaphore`` takes one unit at a time and lets a releasing task barge ahead of
the waiters; here a pipeline chunk takes several units at once and waiters are served in
arrival order, so a task that bursts cannot starve the others (the fairness policy).
"""

from __future__ import annotations

import asyncio
from collections import deque


class InFlightLimit:
    """At most ``limit`` units held; ``acquire(n)`` waits in FIFO order."""

    __slots__ = ("_waiters", "free", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {limit!r}")
        self.limit = limit
        self.free = limit
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Acquirers queued for units (cancelled ones may linger until they reach the head)."""
        return len(self._waiters)

    def try_acquire(self, n: int) -> bool:
        """Take ``n`` units at once if nobody is queued and they are free."""
        if self.free >= n and not self._waiters:
            self.free -= n
            return True
        return False

    async def acquire(self, n: int) -> None:
        """Take ``n`` units (at most ``limit``), waiting behind every earlier acquirer."""
        if self.try_acquire(n):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(n)  # granted, but the task was cancelled before it resumed
            else:
                self.release(0)  # a cancelled head must not block the ones behind it
            raise

    def release(self, n: int) -> None:
        """Return ``n`` units and hand them to the waiters at the head that they satisfy."""
        self.free += n
        waiters = self._waiters
        while waiters:
            want, future = waiters[0]
            if future.done():
                waiters.popleft()
                continue
            if self.free < want:
                break
            self.free -= want
            waiters.popleft()
            future.set_result(None)
