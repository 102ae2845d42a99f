"""Per-process pool statistics: counters updated on checkout/return, read as a snapshot.

The hot path (``on_checkout`` / ``on_release``) does integer and float adds under one
uncontended lock and nothing else: no allocation beyond a ring-buffer slot, no I/O.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# Recent samples kept for percentiles: enough for a stable p95, small enough to copy.
SAMPLES = 1024


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True)
class Timing:
    """Durations in milliseconds: over all events (count, total, max) and recent (mean, p95)."""

    count: int
    total_ms: float
    mean_ms: float
    p95_ms: float
    max_ms: float


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one alias's pool in this process. ``asdict()`` is JSON-ready."""

    alias: str
    pid: int
    pool_class: str
    address: str
    max_connections: int
    # gauges
    open: int
    in_use: int
    idle: int
    waiting: int
    # counters since the pool was built (or since fork, in a child)
    created: int
    closed: int
    checkouts: int
    releases: int
    waits: int
    wait_timeouts: int
    exhausted: int
    errors: int
    leaks: int
    high_water: int
    wait: Timing
    hold: Timing
    since: float = field(default=0.0)  # time.time() the counters started

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Counters:
    """Mutable counters owned by one pool. Replaced, not reset, after a fork."""

    __slots__ = (
        "_hold_samples",
        "_hold_slot",
        "_lock",
        "_wait_samples",
        "_wait_slot",
        "checkouts",
        "closed",
        "connects",
        "created",
        "errors",
        "exhausted",
        "high_water",
        "hold_max",
        "hold_total",
        "in_use",
        "leaks",
        "pid",
        "releases",
        "since",
        "wait_max",
        "wait_timeouts",
        "wait_total",
        "waiting",
        "waits",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pid = os.getpid()
        self.since = time.time()
        self.created = self.closed = self.connects = 0
        self.checkouts = self.releases = self.in_use = self.high_water = 0
        self.waits = self.waiting = self.wait_timeouts = self.exhausted = 0
        self.errors = self.leaks = 0
        self.wait_total = self.wait_max = self.hold_total = self.hold_max = 0.0
        self._wait_samples: list[float] = []
        self._hold_samples: list[float] = []
        self._wait_slot = self._hold_slot = 0

    # -- hot path ------------------------------------------------------------------------
    def on_checkout(self, waited: float) -> None:
        with self._lock:
            self.checkouts += 1
            in_use = self.in_use = self.in_use + 1
            if in_use > self.high_water:
                self.high_water = in_use
            self.wait_total += waited
            if waited > self.wait_max:
                self.wait_max = waited
            samples = self._wait_samples
            if len(samples) < SAMPLES:
                samples.append(waited)
            else:
                samples[self._wait_slot] = waited
                self._wait_slot = (self._wait_slot + 1) % SAMPLES

    def on_release(self, held: float) -> None:
        with self._lock:
            self.releases += 1
            self.in_use -= 1
            self.hold_total += held
            if held > self.hold_max:
                self.hold_max = held
            samples = self._hold_samples
            if len(samples) < SAMPLES:
                samples.append(held)
            else:
                samples[self._hold_slot] = held
                self._hold_slot = (self._hold_slot + 1) % SAMPLES

    # -- rarer events --------------------------------------------------------------------
    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def timings(self) -> tuple[Timing, Timing]:
        with self._lock:
            waits = list(self._wait_samples)
            holds = list(self._hold_samples)
            wait_n, hold_n = self.checkouts, self.releases
            wait_total, wait_max = self.wait_total, self.wait_max
            hold_total, hold_max = self.hold_total, self.hold_max
        return (
            _timing(wait_n, wait_total, wait_max, waits),
            _timing(hold_n, hold_total, hold_max, holds),
        )


def _timing(count: int, total: float, peak: float, samples: list[float]) -> Timing:
    mean = (sum(samples) / len(samples)) if samples else 0.0
    return Timing(
        count=count,
        total_ms=round(total * 1000, 3),
        mean_ms=round(mean * 1000, 3),
        p95_ms=round(_percentile(samples, 0.95) * 1000, 3),
        max_ms=round(peak * 1000, 3),
    )
