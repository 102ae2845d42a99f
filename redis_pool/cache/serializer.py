"""The value format of Django's own ``RedisCache``, so both backends read each other's data.

Integers are stored as their decimal text (so ``INCRBY`` works on them), everything else as
a pickle. ``type(obj) is int`` rather than ``isinstance``: a ``bool`` is pickled, as Django
does, so that ``True`` reads back as ``True`` and not ``1``.
"""

from __future__ import annotations

import pickle
from typing import Any


class RedisSerializer:
    """``dumps``/``loads`` byte-compatible with ``django.core.cache.backends.redis``."""

    def __init__(self, protocol: int | None = None) -> None:
        self.protocol = pickle.HIGHEST_PROTOCOL if protocol is None else protocol

    def dumps(self, obj: Any) -> bytes | int:
        if type(obj) is int:
            return obj
        return pickle.dumps(obj, self.protocol)

    def loads(self, data: bytes | int) -> Any:
        # Raw bytes always (the backend reads with NEVER_DECODE). A pickle of protocol 2+
        # starts with b"\x80", which int() refuses: skip the costly failed int() for it.
        # Anything else is tried as an integer first, as Django does.
        if isinstance(data, bytes) and data[:1] == b"\x80":
            return pickle.loads(data)
        try:
            return int(data)
        except ValueError:
            return pickle.loads(data)  # type: ignore[arg-type]
