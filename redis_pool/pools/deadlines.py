"""Read deadlines for Redis's blocking commands.

A blocking command (``BLPOP q 8``, ``XREAD BLOCK 6000 ...``) is answered only when its
block time is over, so the connection's ``socket_timeout`` (5 s by default) must not apply
to its reply: the reply gets the block time plus a grace period of one ``socket_timeout``
(ioredis does the same), so a stalled server still fails, at block time + grace. A block
forever (timeout ``0``, ``BLOCK 0``, ``WAIT n 0``) waits as asked: its reply has no read
deadline, and a dead server is noticed by TCP keepalive (see docs/blocking-commands.md).

The connection classes (``pools/connections.py``) call ``reply_timeout()`` only for
a command whose name is in ``BLOCKING_COMMANDS``: every other command pays one set lookup.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from typing import Any, Final

# Where each command carries its block time, and in which unit.
_LAST_SECONDS = ("BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BZPOPMIN", "BZPOPMAX")
_SECOND_SECONDS = ("BLMPOP", "BZMPOP")  # BLMPOP timeout numkeys key ... LEFT|RIGHT
_BLOCK_TOKEN_MS = ("XREAD", "XREADGROUP")  # ... [BLOCK ms] ... STREAMS ...
_AT_MS = {"WAIT": 2, "WAITAOF": 3}  # WAIT numreplicas ms; WAITAOF numlocal numreplicas ms

_NAMES = (*_LAST_SECONDS, *_SECOND_SECONDS, *_BLOCK_TOKEN_MS, *_AT_MS)


def _spellings(name: str) -> tuple[Any, ...]:
    # redis-py sends upper-case str names; execute_command() passes whatever it is given.
    return (name, name.lower(), name.encode(), name.lower().encode())


BLOCKING_COMMANDS: Final = frozenset(s for name in _NAMES for s in _spellings(name))

NOT_BLOCKING: Final[Any] = object()
"""``reply_timeout()``'s answer for a command that does not block (``XREAD`` without
``BLOCK``) or whose block time cannot be read: the connection's own timeout applies."""


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("ascii", "replace")
    return str(value)


def _number(value: Any) -> float | None:
    try:
        number = float(_text(value))
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def block_seconds(args: Sequence[Any]) -> float | None:
    """The block time of the command ``args`` in seconds (``0.0``: forever), or ``None``
    if it does not block or its block time cannot be read (the server will refuse it)."""
    name = _text(args[0]).upper()
    try:
        if name in _LAST_SECONDS:
            return _number(args[-1])
        if name in _SECOND_SECONDS:
            return _number(args[1])
        if name in _AT_MS:
            millis = _number(args[_AT_MS[name]])
            return None if millis is None else millis / 1000.0
    except IndexError:
        return None
    for index in range(1, len(args) - 1):
        token = _text(args[index]).upper()
        if token == "STREAMS":
            return None
        if token == "BLOCK":
            millis = _number(args[index + 1])
            return None if millis is None else millis / 1000.0
    return None


def reply_timeout(args: Sequence[Any], socket_timeout: float | None) -> Any:
    """The read timeout for the reply to ``args``, a blocking command: block time plus
    one ``socket_timeout`` of grace, ``None`` (no deadline) for a block forever, or
    ``NOT_BLOCKING`` when the connection's ``socket_timeout`` should apply as usual."""
    if socket_timeout is None:
        return NOT_BLOCKING  # no deadline anyway
    block = block_seconds(args)
    if block is None:
        return NOT_BLOCKING
    if block == 0.0:
        return None
    return block + socket_timeout


def keepalive_defaults(connection: Any, kwargs: dict[str, Any]) -> None:
    """TCP keepalive probes on ``connection`` unless its settings chose otherwise: how a
    dead server (or a dead network path) is noticed while a block-forever command waits
    with no read deadline. redis-py 8.1 has the same defaults (idle 30 s, then 3 probes
    5 s apart: about 45 s); redis-py 7 leaves them to the OS (2 hours on Linux)."""
    if not getattr(connection, "socket_keepalive", False) or "socket_keepalive_options" in kwargs:
        return
    if connection.socket_keepalive_options:
        return
    options: dict[int, int] = {}
    for names, value in ((("TCP_KEEPIDLE", "TCP_KEEPALIVE"), 30), (("TCP_KEEPINTVL",), 5)):
        for name in names:
            if hasattr(socket, name):
                options[getattr(socket, name)] = value
                break
    if hasattr(socket, "TCP_KEEPCNT"):
        options[socket.TCP_KEEPCNT] = 3
    connection.socket_keepalive_options = options
