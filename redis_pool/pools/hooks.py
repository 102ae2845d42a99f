"""What the pools announce, for the layers above them to act on.

The pools sit below the monitor that publishes their stats, so they cannot call it: they
fire a hook, and ``redis_pool.observability.monitor`` subscribes when it is imported
(``redis_pool/__init__.py`` imports it, so every use of the package has it).
"""

from __future__ import annotations

from collections.abc import Callable

_on_monitored_connection: list[Callable[[], None]] = []


def on_monitored_connection(callback: Callable[[], None]) -> None:
    """Call ``callback`` when a pool whose alias wants monitoring (stats publishing or leak
    detection) makes a new connection. Runs off the checkout path: new connections only."""
    if callback not in _on_monitored_connection:
        _on_monitored_connection.append(callback)


def monitored_connection_made() -> None:
    for callback in _on_monitored_connection:
        callback()
