"""How a Redis command is shown in the panel: name, key, arguments truncated, secrets masked.

No Django, no toolbar: pure functions of the command's arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MASK = "********"
MAX_ARG = 60  # characters of one argument
MAX_ARGS = 12  # arguments shown; the rest are counted
MAX_LINE = 400  # characters of a pipeline's summary

# Commands whose first argument is a sub-command: shown as one name ("CONFIG SET").
_CONTAINERS = frozenset(
    {"ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "MEMORY", "MODULE",
     "OBJECT", "PUBSUB", "SCRIPT", "SENTINEL", "SLOWLOG", "XGROUP", "XINFO", "LATENCY"}
)  # fmt: skip


def text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _is_secret_parameter(name: str) -> bool:
    # requirepass, masterauth, tls-key-file-pass, SENTINEL's auth-pass / auth-user, ...
    lowered = name.lower()
    return "pass" in lowered or "auth" in lowered


def masked(words: list[str]) -> list[str]:
    """``words`` (the command and its arguments, as text) with every secret replaced."""
    words = list(words)
    name = words[0].upper() if words else ""
    sub = words[1].upper() if len(words) > 1 else ""

    def hide(start: int, stop: int | None = None) -> None:
        for index in range(start, len(words) if stop is None else min(stop, len(words))):
            words[index] = MASK

    if name == "AUTH":
        hide(1)
    elif name == "ACL" and sub == "SETUSER":
        hide(3)  # every rule: ">password", "#hash", "<password" hide among them
    elif name in ("HELLO", "MIGRATE"):
        for index, word in enumerate(words):
            upper = word.upper()
            if upper == "AUTH":
                hide(index + 1, index + (3 if name == "HELLO" else 2))
            elif upper == "AUTH2":
                hide(index + 1, index + 3)
    elif (name == "CONFIG" and sub == "SET") or (name == "SENTINEL" and sub in ("SET", "CONFIG")):
        # CONFIG SET p v [p v ...]; SENTINEL SET master p v [...]; SENTINEL CONFIG SET p v
        first = 2 if name == "CONFIG" else 3
        for index in range(first, len(words) - 1, 2):
            if _is_secret_parameter(words[index]):
                words[index + 1] = MASK
    return words


def _truncate(word: str, limit: int = MAX_ARG) -> str:
    return word if len(word) <= limit else word[: limit - 1] + "…"


def describe(args: Sequence[Any]) -> tuple[str, str, str]:
    """``(command, key, arguments)`` for display: secrets masked, long values cut."""
    words = [text(arg) for arg in args]
    # redis-py sends a sub-command with its command as one argument ("CONFIG SET").
    words = masked([*words[0].split(), *words[1:]] if words else [])
    if not words:
        return "", "", ""
    head = 2 if words[0].upper() in _CONTAINERS and len(words) > 1 else 1
    command = " ".join(word.upper() for word in words[:head])
    rest = words[head:]
    key = _truncate(rest[0]) if rest and head == 1 else ""
    shown = [_truncate(word) for word in rest[:MAX_ARGS]]
    if len(rest) > MAX_ARGS:
        shown.append(f"… (+{len(rest) - MAX_ARGS} more)")
    return command, key, " ".join(shown)


def describe_pipeline(stack: Sequence[Sequence[Any]]) -> str:
    """One line for a pipeline's commands, each described as above."""
    parts = []
    for args in stack:
        command, _, shown = describe(args)
        parts.append(f"{command} {shown}".strip())
    return _truncate("; ".join(parts), MAX_LINE)
