"""Retiring a replaced pool: idle connections close now, lent ones when they come back."""

from __future__ import annotations

from typing import Any


class _ClosingOnReturn:
    """Mixed into a retired pool's in-use set or queue (``retire_class``): a connection
    that comes back is closed instead of kept, unless a waiter takes it over (it is still
    in use then). Swapped in under the pool's lock, so no return can slip past it."""

    def remove(self, connection: Any, *args: Any) -> None:
        super().remove(connection)  # type: ignore[misc]
        connection.disconnect()  # out of the in-use set, not yet free: nobody else's

    def _put(self, item: Any) -> None:
        if item is not None and not self.waiters:  # type: ignore[attr-defined]
            item.disconnect()
        super()._put(item)  # type: ignore[misc]


_retired_classes: dict[Any, type[Any]] = {}


def retire_class(base: Any) -> type[Any]:
    """``base`` (an in-use set or queue class of ours) that closes returned connections."""
    klass = _retired_classes.get(base)
    if klass is None:
        klass = type(f"Retired{base.__name__}", (_ClosingOnReturn, base), {})
        klass = _retired_classes.setdefault(base, klass)
    return klass
