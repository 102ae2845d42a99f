"""Each cache operation as data: the Redis commands to send and how to read their replies.

One policy for both drivers (``RedisCache._run`` sync, ``_arun`` async), so the sync and
async methods cannot drift apart. Nothing here does I/O. Exception: the sync ``get``,
``set`` (no ``nx``, non-zero timeout), ``delete``, ``incr`` and ``get_many`` send the same
commands straight from ``RedisCache`` (a Plan and its closure cost ~1 µs of ~45 per
operation); tests/test_cache.py runs each of them sync and async.

Round trips (Django's ``RedisCache`` in brackets): ``incr`` 1 (2: EXISTS then INCRBY),
``add`` 1 with ``SET NX`` (1; 2 for a zero timeout), ``set_many`` 1 pipeline (1),
``get_many`` 1 ``MGET`` (1), ``delete_many`` 1 ``DEL`` (1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.client import NEVER_DECODE

from redis_pool.cache.serializer import RedisSerializer

# Read replies as bytes even on an alias with decode_responses=True: a pickle is not text.
# Decoding is a per-connection setting in redis-py; NEVER_DECODE is its per-command escape,
# so the cache shares the alias's pool (and its bound) instead of needing a second one.
RAW: dict[str, Any] = {NEVER_DECODE: []}
NONE: dict[str, Any] = {}

# incr/decr in one round trip with Django's semantics: a missing key is an error (ValueError)
# rather than created at 0; the TTL of an existing key is kept (INCRBY keeps it).
INCR_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""
INCR_SHA = hashlib.sha1(INCR_SCRIPT.encode()).hexdigest()

Call = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(slots=True)
class Plan:
    calls: list[Call]
    finish: Callable[[list[Any]], Any]
    miss: Any = None  # the result under IGNORE_EXCEPTIONS when Redis is unreachable
    # EVAL for an EVALSHA the server does not know (restarted, SCRIPT FLUSH): one command.
    fallback: tuple[Any, ...] | None = field(default=None)


def _first(results: list[Any]) -> Any:
    return results[0]


def _first_bool(results: list[Any]) -> bool:
    return bool(results[0])


def _nothing(results: list[Any]) -> None:
    return None


def get(serializer: RedisSerializer, key: str, default: Any) -> Plan:
    def finish(results: list[Any]) -> Any:
        value = results[0]
        return default if value is None else serializer.loads(value)

    return Plan([(("GET", key), RAW)], finish, default)


def set_(
    serializer: RedisSerializer, key: str, value: Any, timeout: int | None, nx: bool = False
) -> Plan:
    if timeout == 0:
        if nx:  # an existing key is left alone; an absent one would expire at once
            return Plan([(("EXISTS", key), NONE)], lambda r: not r[0], False)
        return Plan([(("DEL", key), NONE)], _nothing)
    args: tuple[Any, ...] = ("SET", key, serializer.dumps(value))
    if timeout is not None:
        args += ("EX", timeout)
    if nx:
        return Plan([((*args, "NX"), NONE)], _first_bool, False)
    return Plan([(args, NONE)], _nothing)


def add(serializer: RedisSerializer, key: str, value: Any, timeout: int | None) -> Plan:
    # A zero timeout: Django's SETs NX and DELETEs again; set_() asks EXISTS instead.
    return set_(serializer, key, value, timeout, nx=True)


def touch(key: str, timeout: int | None) -> Plan:
    if timeout is None:
        # PERSIST answers 0 for a key that exists without a TTL; "touched" means it exists.
        calls: list[Call] = [(("PERSIST", key), NONE), (("EXISTS", key), NONE)]
        return Plan(calls, lambda r: bool(r[1]), False)
    return Plan([(("EXPIRE", key, timeout), NONE)], _first_bool, False)


def delete(key: str) -> Plan:
    return Plan([(("DEL", key), NONE)], _first_bool, False)


def has_key(key: str) -> Plan:
    return Plan([(("EXISTS", key), NONE)], _first_bool, False)


def incr(key: str, delta: int, ignore_key_check: bool = False) -> Plan:
    if ignore_key_check:  # django-redis's option: a missing key starts at 0
        return Plan([(("INCRBY", key, delta), NONE)], _first)

    def finish(results: list[Any]) -> int:
        if results[0] is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(results[0])

    call = (("EVALSHA", INCR_SHA, 1, key, delta), NONE)
    return Plan([call], finish, fallback=("EVAL", INCR_SCRIPT, 1, key, delta))


def get_many(serializer: RedisSerializer, keys: Sequence[str]) -> Plan:
    def finish(results: list[Any]) -> dict[str, Any]:
        return {
            k: serializer.loads(v) for k, v in zip(keys, results[0], strict=True) if v is not None
        }

    return Plan([(("MGET", *keys), RAW)], finish, {})


def set_many(serializer: RedisSerializer, data: dict[str, Any], timeout: int | None) -> Plan:
    if timeout == 0:
        return Plan([(("DEL", *data), NONE)], _nothing)
    if timeout is None:
        flat: list[Any] = []
        for key, value in data.items():
            flat += (key, serializer.dumps(value))
        return Plan([(("MSET", *flat), NONE)], _nothing)
    # One pipeline of SET EX (Django: MSET then one EXPIRE per key, in MULTI/EXEC).
    calls = [(("SET", k, serializer.dumps(v), "EX", timeout), NONE) for k, v in data.items()]
    return Plan(calls, _nothing)


def delete_many(keys: Iterable[str]) -> Plan:
    """Returns how many were deleted (django-redis's; Django's returns None)."""
    return Plan([(("DEL", *keys), NONE)], _first, 0)


def ttl(key: str, command: str = "TTL") -> Plan:
    """django-redis's ``ttl``/``pttl``: 0 for a missing key, None for no expiry."""

    def finish(results: list[Any]) -> int | None:
        value = int(results[0])
        if value == -1:
            return None
        return max(value, 0)

    return Plan([((command, key), NONE)], finish)


def command(*args: Any) -> Plan:
    """One command whose integer reply means yes/no (EXPIRE, PERSIST, ...)."""
    return Plan([(args, NONE)], _first_bool, False)
