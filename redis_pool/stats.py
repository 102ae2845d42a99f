"""Per-process pool statistics: counters updated on checkout/return, read as a snapshot.

The sync pools update ``Counters`` from inside redis-py's own critical sections (the pool's
lock, or the blocking pool's queue mutex; see ``pools.py``), so the hot path is a handful of
integer adds and one clock read per side, with no lock of ours. Rarer events (connects,
closes, errors) and the async pools go through ``add()`` / ``on_checkout()`` /
``on_release()``, which take the counters' own lock.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# Recent samples kept for percentiles: a power of two so the ring index is a mask.
SAMPLES = 1024
SAMPLE_MASK = SAMPLES - 1
NEVER = float("inf")


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


ZERO = Timing(0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one alias's pool in this process. ``as_dict()`` is JSON-ready.

    Field meanings are documented in README: Pool statistics; the published snapshot and
    ``redis_poolstats --json`` carry the same names.
    """

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
    connect: Timing = ZERO
    host: str = ""
    client_name: str = ""
    leak_detection_threshold: float | None = None
    publishes: int = 0
    publish_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Counters:
    """Mutable counters owned by one pool. Replaced, not reset, after a fork."""

    __slots__ = (
        "_connect_samples",
        "_lock",
        "_wait_samples",
        "_wait_slot",
        "capture_stacks",
        "checkouts",
        "closed",
        "connect_max",
        "connect_total",
        "connects",
        "created",
        "errors",
        "exhausted",
        "high_water",
        "hold_max",
        "hold_samples",
        "hold_slot",
        "hold_total",
        "in_use",
        "late_leaks",
        "leak_limit",
        "leaks",
        "pid",
        "publish_errors",
        "publishes",
        "releases",
        "since",
        "wait_max",
        "wait_timeouts",
        "wait_total",
        "waiting",
        "waits",
    )

    def __init__(self, leak_detection_threshold: float | None = None) -> None:
        self._lock = threading.Lock()
        self.pid = os.getpid()
        self.since = time.time()
        self.created = self.closed = self.connects = 0
        self.checkouts = self.releases = self.in_use = self.high_water = 0
        self.waits = self.waiting = self.wait_timeouts = self.exhausted = 0
        self.errors = self.leaks = self.publishes = self.publish_errors = 0
        self.wait_total = self.wait_max = self.hold_total = self.hold_max = 0.0
        self.connect_total = self.connect_max = 0.0
        self._wait_samples: list[float] = []
        self.hold_samples: list[float] = [0.0] * SAMPLES
        self._connect_samples: list[float] = []
        self._wait_slot = self.hold_slot = 0
        # Leak detection: a hold longer than leak_limit (seconds) is a suspected leak. NEVER
        # when off, so the release path compares one float either way.
        self.leak_limit = NEVER if leak_detection_threshold is None else leak_detection_threshold
        self.capture_stacks = leak_detection_threshold is not None
        # (held seconds, checkout stack, already reported) for connections returned after
        # the limit; appended on release (list.append is atomic), logged by the monitor.
        self.late_leaks: list[tuple[float, Any, bool]] = []

    # -- checkout and return of the async pools (the sync pools inline the same adds in
    # pools.py, under redis-py's own lock, and derive in_use and releases from the pool) ---
    def checked_out(self) -> None:
        """Count one checkout."""
        self.checkouts += 1
        in_use = self.in_use = self.in_use + 1
        if in_use > self.high_water:
            self.high_water = in_use

    def returned(self, held: float) -> None:
        """Count one return after ``held`` seconds."""
        self.releases += 1
        self.in_use -= 1
        self.held(held)

    def held(self, seconds: float) -> None:
        """Record a connection's hold time. The sync pools call it under redis-py's lock;
        a return there counts by its ``hold_slot`` (see ``InstrumentedPoolMixin.stats``)."""
        self.hold_total += seconds
        if seconds > self.hold_max:
            self.hold_max = seconds
        slot = self.hold_slot
        self.hold_samples[slot & SAMPLE_MASK] = seconds
        self.hold_slot = slot + 1

    def waited(self, seconds: float) -> None:
        """A checkout waited ``seconds``, with or without a connection at the end (so the
        timing's count is ``waits``). Caller holds the queue's mutex or our lock."""
        self.wait_total += seconds
        if seconds > self.wait_max:
            self.wait_max = seconds
        _push(self._wait_samples, seconds, self._wait_slot)
        self._wait_slot += 1

    # -- the async pools: one lock of ours per event -----------------------------------
    def on_checkout(self, waited: float) -> None:
        with self._lock:
            self.checked_out()
            self.waited(waited)

    def on_release(self, held: float) -> None:
        with self._lock:
            self.returned(held)

    # -- rarer events --------------------------------------------------------------------
    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def connected(self, seconds: float) -> None:
        """A socket opened after ``seconds`` (connect, handshake, AUTH, SELECT...)."""
        with self._lock:
            self.created += 1
            self.connect_total += seconds
            if seconds > self.connect_max:
                self.connect_max = seconds
            _push(self._connect_samples, seconds, self.created - 1)

    def timings(self) -> tuple[Timing, Timing]:
        """(wait, hold). Sync pools time only the checkouts that had to wait; the async
        pools time every checkout: ``count`` says how many were timed."""
        with self._lock:
            waits = list(self._wait_samples)
            filled = min(self.hold_slot, SAMPLES)
            holds = self.hold_samples[:filled]
            wait_n, hold_n = self._wait_slot, self.hold_slot
            wait_total, wait_max = self.wait_total, self.wait_max
            hold_total, hold_max = self.hold_total, self.hold_max
        return (
            _timing(wait_n, wait_total, wait_max, waits),
            _timing(hold_n, hold_total, hold_max, holds),
        )

    def connect_timing(self) -> Timing:
        with self._lock:
            samples = list(self._connect_samples)
            return _timing(self.created, self.connect_total, self.connect_max, samples)


def _push(samples: list[float], value: float, slot: int) -> None:
    if len(samples) < SAMPLES:
        samples.append(value)
    else:
        samples[slot & SAMPLE_MASK] = value


def _timing(count: int, total: float, peak: float, samples: list[float]) -> Timing:
    mean = (sum(samples) / len(samples)) if samples else 0.0
    return Timing(
        count=count,
        total_ms=round(total * 1000, 3),
        mean_ms=round(mean * 1000, 3),
        p95_ms=round(_percentile(samples, 0.95) * 1000, 3),
        max_ms=round(peak * 1000, 3),
    )
