"""Leak detection, after HikariCP's ``leakDetectionThreshold``.

With ``leak_detection_threshold`` set for an alias, every checkout records where it
happened (a cheap walk of the frames, formatted only if ever reported). The per-process
monitor thread (``observability/monitor.py``) then logs, once per checkout, any
connection held longer than the threshold, with that stack; a connection returned late,
before the monitor saw it, is reported from the return path's note. Nothing here runs
when the threshold is unset.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterable
from time import perf_counter
from typing import Any

import redis

from redis_pool.stats.counters import Counters

logger = logging.getLogger("redis_pool.stats.leaks")

MAX_FRAMES = 64
Stack = tuple[tuple[str, int, str], ...]

# Frames of redis-py and of this package are noise at the top of a checkout stack.
_INTERNAL = (
    os.path.dirname(redis.__file__) + os.sep,
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
)


def capture() -> Stack:
    """Where the caller is: (file, line, function) from innermost out, no source lookups."""
    frame: Any = sys._getframe(1)
    frames: list[tuple[str, int, str]] = []
    while frame is not None and len(frames) < MAX_FRAMES:
        code = frame.f_code
        frames.append((code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    return tuple(frames)


def format_stack(stack: Stack | None) -> str:
    if not stack:
        return "  (stack not recorded)\n"
    frames = list(stack)
    while len(frames) > 1 and frames[0][0].startswith(_INTERNAL):
        frames.pop(0)
    frames.reverse()
    summary = traceback.StackSummary.from_list([(f, n, name, None) for f, n, name in frames])
    return "".join(summary.format())


def scan(alias: str, counters: Counters, connections: Iterable[Any]) -> int:
    """Report each connection of ``connections`` (the pool's in-use ones) held too long.

    Returns how many were newly reported. Runs in the monitor thread only.
    """
    limit = counters.leak_limit
    reported = 0
    now = perf_counter()
    for connection in connections:
        out = getattr(connection, "_rp_out", None)
        if out is None or now - out <= limit or getattr(connection, "_rp_reported", None) == out:
            continue
        connection._rp_reported = out
        reported += 1
        counters.add("leaks")
        logger.warning(
            "Possible connection leak in Redis pool %r: a connection has been checked out "
            "for %.1f s (leak_detection_threshold=%g s). It was checked out at:\n%s",
            alias,
            now - out,
            limit,
            format_stack(getattr(connection, "_rp_stack", None)),
        )
    while counters.late_leaks:
        held, stack, already = counters.late_leaks.pop(0)
        if already:
            logger.info(
                "Previously reported leaked connection of Redis pool %r was returned after %.1f s.",
                alias,
                held,
            )
            continue
        reported += 1
        counters.add("leaks")
        logger.warning(
            "Possible connection leak in Redis pool %r: a connection was held for %.1f s "
            "(leak_detection_threshold=%g s) before it was returned. It was checked out at:"
            "\n%s",
            alias,
            held,
            limit,
            format_stack(stack),
        )
    return reported


def note_late_return(counters: Counters, connection: Any, out: float, held: float) -> None:
    """Return path, held > limit: leave a note for the monitor (list.append is atomic)."""
    already = getattr(connection, "_rp_reported", None) == out
    counters.late_leaks.append((held, getattr(connection, "_rp_stack", None), already))
