"""``Problem``: one thing wrong with REDIS_POOL, as data (``checks.py`` reports it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with REDIS_POOL; ``checks.py`` turns it into a CheckMessage."""

    id: str
    msg: str
    hint: str | None = None
    alias: str | None = None
    error: bool = True
