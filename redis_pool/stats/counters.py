"""Per-process pool statistics: ``Counters`` updated by the pools, read as a ``PoolStats``
snapshot (``Counters.snapshot``). The accounting model is in ``Counters``' docstring."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_pool.config.defaults import hostname

# Recent samples kept for percentiles: a power of two so the ring index is a mask.
SAMPLES = 1024
SAMPLE_MASK = SAMPLES - 1
NEVER = float("inf")
# Set by log_holds(): new counters also keep each hold time until an exporter takes it.
_hold_log_size = 0


def log_holds(size: int) -> None:
    """Make every ``Counters`` built from now on keep its hold times one by one, up to
    ``size`` not yet taken, for an exporter that records each (contrib.opentelemetry's
    histogram). Off (0) by default, which costs the return path one comparison."""
    global _hold_log_size
    _hold_log_size = max(0, int(size))


def new_hold_log() -> deque[float] | None:
    return deque(maxlen=_hold_log_size) if _hold_log_size else None


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

    Field meanings are documented in docs/statistics.md; the published snapshot and
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


@dataclass(frozen=True)
class PoolIdentity:
    """What a snapshot says about the pool itself, beside its counters."""

    alias: str
    pool_class: str
    address: str
    max_connections: int
    client_name: str
    leak_detection_threshold: float | None


class Counters:
    """Mutable counters owned by one pool. Replaced, not reset, after a fork.

    One accounting model for every pool, sync and asyncio:

    - The return path counts. A return of a connection whose checkout was timed records
      its hold time (``held()``): ``hold_slot`` is how many such returns there were. A
      return without a hold time (redis-py hands the blocking pool's queue a ``None``
      placeholder for a connection it did not keep) adds to ``untimed_returns``.
    - The checkout path only stamps the connection (``_rp_out``, the clock at checkout),
      and counts nothing.
    - The in-use gauge is read from the pool at snapshot time (its in-use set or queue),
      so checkouts are returns plus in use, and the high-water mark is the number of
      connections the pool made (a pool makes one only when all it has are in use).
      ``snapshot()`` does the arithmetic, for every pool the same.

    The hot path runs under a lock that is not ours (redis-py's pool lock, the blocking
    pool's queue mutex) or on the event loop's thread, the only writer for an asyncio pool:
    plain integer adds, no lock. Waits are counted by the queue (sync) or the pool (async)
    in the same places. Rarer events (connects, closes, errors, publishes) go through
    ``add()`` / ``connected()``, which take the counters' own lock.
    """

    __slots__ = (
        "_connect_samples",
        "_lock",
        "_wait_samples",
        "_wait_slot",
        "capture_stacks",
        "closed",
        "connect_max",
        "connect_total",
        "created",
        "errors",
        "exhausted",
        "hold_log",
        "hold_max",
        "hold_samples",
        "hold_slot",
        "hold_total",
        "late_leaks",
        "leak_limit",
        "leaks",
        "pid",
        "publish_errors",
        "publishes",
        "since",
        "untimed_returns",
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
        self.created = self.closed = self.untimed_returns = 0
        self.waits = self.waiting = self.wait_timeouts = self.exhausted = 0
        self.errors = self.leaks = self.publishes = self.publish_errors = 0
        self.wait_total = self.wait_max = self.hold_total = self.hold_max = 0.0
        self.connect_total = self.connect_max = 0.0
        self._wait_samples: list[float] = []
        self.hold_samples: list[float] = [0.0] * SAMPLES
        # Each hold time, for an exporter (log_holds); appended and taken without a lock
        # (deque.append and popleft are atomic).
        self.hold_log = new_hold_log()
        self._connect_samples: list[float] = []
        self._wait_slot = self.hold_slot = 0
        # Leak detection: a hold longer than leak_limit (seconds) is a suspected leak. NEVER
        # when off, so the return path compares one float either way.
        self.leak_limit = NEVER if leak_detection_threshold is None else leak_detection_threshold
        self.capture_stacks = leak_detection_threshold is not None
        # (held seconds, checkout stack, already reported) for connections returned after
        # the limit; appended on return (list.append is atomic), logged by the monitor.
        self.late_leaks: list[tuple[float, Any, bool]] = []

    # -- the hot path: callers hold the pool's lock or the queue's mutex, or run on the
    # asyncio pool's event loop ------------------------------------------------------------
    def held(self, seconds: float) -> None:
        """Count one return, of a connection held ``seconds`` since its checkout."""
        self.hold_total += seconds
        if seconds > self.hold_max:
            self.hold_max = seconds
        slot = self.hold_slot
        self.hold_samples[slot & SAMPLE_MASK] = seconds
        self.hold_slot = slot + 1
        log = self.hold_log
        if log is not None:
            log.append(seconds)

    def waited(self, seconds: float) -> None:
        """A checkout waited ``seconds``, with or without a connection at the end (so the
        wait timing's count is ``waits``)."""
        self.wait_total += seconds
        if seconds > self.wait_max:
            self.wait_max = seconds
        _push(self._wait_samples, seconds, self._wait_slot)
        self._wait_slot += 1

    @property
    def returns(self) -> int:
        """Returns counted since the counters started: timed and untimed."""
        return self.hold_slot + self.untimed_returns

    # -- rarer events: our own lock ----------------------------------------------------------
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
        """(wait, hold): waits are timed only for checkouts that had to wait (``count`` is
        ``waits``), holds for every timed return."""
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

    def snapshot(self, pool: PoolIdentity, *, in_use: int, made: int) -> PoolStats:
        """``PoolStats`` of ``pool``, with ``in_use`` connections checked out now and
        ``made`` made since these counters started. One implementation for every pool,
        sync and asyncio: the fields mean the same everywhere."""
        open_now = self.created - self.closed
        returns = self.returns
        wait, hold = self.timings()
        return PoolStats(
            alias=pool.alias,
            pid=os.getpid(),
            pool_class=pool.pool_class,
            address=pool.address,
            max_connections=pool.max_connections,
            open=open_now,
            in_use=in_use,
            idle=max(0, open_now - in_use),
            waiting=self.waiting,
            created=self.created,
            closed=self.closed,
            checkouts=returns + in_use,
            releases=returns,
            waits=self.waits,
            wait_timeouts=self.wait_timeouts,
            exhausted=self.exhausted,
            errors=self.errors,
            leaks=self.leaks,
            high_water=max(in_use, made),
            wait=wait,
            hold=hold,
            since=self.since,
            connect=self.connect_timing(),
            host=hostname(),
            client_name=pool.client_name,
            leak_detection_threshold=pool.leak_detection_threshold,
            publishes=self.publishes,
            publish_errors=self.publish_errors,
        )


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
