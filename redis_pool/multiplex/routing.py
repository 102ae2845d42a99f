"""Which commands cannot share the multiplexed connection.

Three kinds, each measured to break other callers when shared: commands that block the
connection (a BLPOP held every other task for its whole timeout), commands whose effect
spans later commands (MULTI/EXEC, WATCH: another task's SET landed inside a MULTI, a WATCH
was cleared so a lost update went through), and commands that change the connection's
state (SELECT switched everyone's database).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

Route = Literal["shared", "dedicated", "isolated"]

# Run on a connection of the pool, given back afterwards.
_BLOCKING = frozenset(
    {
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
        "WAIT", "WAITAOF", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "MONITOR",
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
        "SUNSUBSCRIBE", "SYNC", "PSYNC", "REPLCONF", "HIMPORT",
    }
)  # fmt: skip
# Change the connection's state: run on a connection of the pool that is then closed,
# so the change cannot outlive the call and reach an unrelated later command.
_STATEFUL = frozenset(
    {"SELECT", "AUTH", "HELLO", "RESET", "QUIT", "READONLY", "READWRITE", "ASKING"}
)
_STATEFUL_CLIENT = frozenset(
    {"TRACKING", "REPLY", "SETNAME", "SETINFO", "CACHING", "NO-EVICT", "NO-TOUCH"}
)
_MAYBE_BLOCKING = frozenset({"XREAD", "XREADGROUP"})  # only with BLOCK

_cache: dict[Any, Route | None] = {}  # by command name as given: a dict hit on the hot path


def route(args: Sequence[Any]) -> Route:
    """Where ``args`` (a command as passed to ``execute_command``) must run."""
    name = args[0]
    verdict = _cache.get(name)
    if verdict is not None:
        return verdict
    if name in _cache:  # needs its arguments
        return _by_arguments(args)
    verdict = _classify(name)
    if len(_cache) < 4096:  # names are command names in practice; bound it anyway
        _cache[name] = verdict
    return verdict if verdict is not None else _by_arguments(args)


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return str(value)


def _classify(name: Any) -> Route | None:
    words = _text(name).upper().split()
    if not words:
        return "shared"
    head = words[0]
    if head in _BLOCKING:
        return "dedicated"
    if head in _STATEFUL:
        return "isolated"
    if head in _MAYBE_BLOCKING:
        return None
    if head == "CLIENT":
        if len(words) > 1:
            return "isolated" if words[1] in _STATEFUL_CLIENT else "shared"
        return None
    return "shared"


def _by_arguments(args: Sequence[Any]) -> Route:
    head = _text(args[0]).upper().split()
    if head[0] == "CLIENT":
        sub = head[1] if len(head) > 1 else (_text(args[1]).upper() if len(args) > 1 else "")
        return "isolated" if sub in _STATEFUL_CLIENT else "shared"
    # XREAD/XREADGROUP: options come before STREAMS; what follows are keys and ids.
    for arg in args[1:]:
        word = _text(arg).upper()
        if word == "BLOCK":
            return "dedicated"
        if word == "STREAMS":
            break
    return "shared"
