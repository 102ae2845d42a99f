"""Records the Redis commands of the requests that have the panel enabled.

While at least one such request runs, redis-py's client classes carry wrappers around
``execute_command`` (and pipelines' ``execute``), sync and asyncio; the last request to
finish takes them off, so a process with no toolbar request pays nothing. Each request's
``Recorder`` lives in a context variable: a thread or task of another request sees its own
recorder or none, so concurrent requests never see each other's commands.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import redis.asyncio.client
import redis.asyncio.cluster
import redis.client
import redis.cluster

from redis_pool.contrib.debug_toolbar.commands import describe, describe_pipeline

MAX_CALLS = 1000  # details kept per request; more are counted, not listed

current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "redis_pool_debug_toolbar", default=None
)
# Set while a recorded command runs: a client that calls another (a cluster client calling
# a node's) records once.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "redis_pool_debug_toolbar_inside", default=False
)


@dataclass
class _PoolSeen:
    alias: str
    pool: Any
    first: Any  # PoolStats before the request's first command on this pool
    calls: int = 0
    time: float = 0.0
    in_use_peak: int = 0
    waiting_peak: int = 0


@dataclass
class Recorder:
    """The commands of one request, and the pools they went through."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    total: float = 0.0
    pools: dict[int, _PoolSeen] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, client: Any) -> tuple[_PoolSeen | None, tuple[int, int] | None]:
        """The pool's (in use, waiting) as the command starts (``None``: not our pool)."""
        pool: Any = getattr(client, "connection_pool", None)
        gauges = _gauges(pool)
        if gauges is None:
            return None, None
        in_use, waiting = gauges
        with self.lock:
            seen = self.pools.get(id(pool))
        if seen is None:
            # The full snapshot once per pool and request (it sorts the timing samples:
            # ~0.1-0.5 ms), for the counters' growth over the request.
            first = pool.stats()
            with self.lock:
                seen = self.pools.setdefault(id(pool), _PoolSeen(first.alias, pool, first))
        with self.lock:
            seen.in_use_peak = max(seen.in_use_peak, in_use)
            seen.waiting_peak = max(seen.waiting_peak, waiting)
        return seen, gauges

    def add(
        self,
        client: Any,
        state: tuple[_PoolSeen | None, tuple[int, int] | None],
        command: tuple[str, str, str],
        seconds: float,
        error: str,
    ) -> None:
        seen, gauges = state
        name, key, args = command
        alias = seen.alias if seen is not None else _alias_of(client)
        with self.lock:
            self.count += 1
            self.total += seconds
            if seen is not None:
                seen.calls += 1
                seen.time += seconds
            if len(self.calls) >= MAX_CALLS:
                return
            self.calls.append(
                {
                    "alias": alias,
                    "command": name,
                    "key": key,
                    "args": args,
                    "time_ms": round(seconds * 1000, 3),
                    "in_use": gauges[0] if gauges is not None else None,
                    "waiting": gauges[1] if gauges is not None else None,
                    "error": error,
                }
            )

    def summary(self) -> dict[str, Any]:
        """JSON-ready stats for the panel (the toolbar stores them as JSON)."""
        with self.lock:
            seen = list(self.pools.values())
            calls = list(self.calls)
        return {
            "calls": calls,
            "total_calls": self.count,
            "listed_calls": len(calls),
            "total_time_ms": round(self.total * 1000, 3),
            "pools": [_pool_summary(pool) for pool in seen],
        }


def _gauges(pool: Any) -> tuple[int, int] | None:
    """(in use, waiting) of one of our pools, as ``stats()`` counts them, without the rest
    of ``stats()`` (a command pays this, not the snapshot). ``None``: not our pool."""
    counters = getattr(pool, "counters", None)
    in_use = getattr(pool, "_rp_in_use", None)
    if counters is None or in_use is None or not hasattr(pool, "stats"):
        return None
    # Every pool of ours reads in-use from its own structures (stats.counters.Counters).
    return in_use(), counters.waiting


def _alias_of(client: Any) -> str:
    """The alias of a client without a pool of ours: a Cluster alias's (through its node
    pools, or its asyncio nodes' connections), else another library's client."""
    try:
        node = client.get_default_node()
        sync_node = getattr(node, "redis_connection", None)
        if sync_node is not None:
            alias = getattr(sync_node.connection_pool, "alias", None)
        else:  # redis.asyncio: read after the command, so the node has a connection
            alias = next((c._rp_alias for c in node._connections if c._rp_alias), None)
    except Exception:  # not a cluster client, or not ours
        alias = None
    if alias is not None:
        return str(alias)
    # Named by its class only, never by its connection arguments (they may hold a password).
    return f"({type(client).__name__}, not redis_pool)"


def _pool_summary(seen: _PoolSeen) -> dict[str, Any]:
    end = seen.pool.stats()
    first = seen.first
    return {
        "alias": seen.alias,
        "pool_class": end.pool_class,
        "calls": seen.calls,
        "time_ms": round(seen.time * 1000, 3),
        "max_connections": end.max_connections,
        "in_use_peak": max(seen.in_use_peak, end.in_use),
        "waiting_peak": max(seen.waiting_peak, end.waiting),
        "in_use_end": end.in_use,
        "waiting_end": end.waiting,
        # Process-wide deltas over the request: other requests' checkouts count too.
        "checkouts": end.checkouts - first.checkouts,
        "waits": end.waits - first.waits,
        "wait_timeouts": end.wait_timeouts - first.wait_timeouts,
        "connections_opened": end.created - first.created,
    }


def _record(recorder: Recorder, client: Any, command: Callable[[], tuple[str, str, str]]) -> Any:
    """What to do before a command: the pool's state, and how to finish the record."""
    state = recorder.before(client)
    start = perf_counter()

    def finish(error: str) -> None:
        seconds = perf_counter() - start
        try:
            described = command()
        except Exception:  # a display problem must never break the command
            described = ("?", "", "")
        recorder.add(client, state, described, seconds, error)

    return finish


def _stack(pipeline: Any) -> list[Any]:
    items = getattr(pipeline, "command_stack", None) or []
    return [item[0] if isinstance(item, tuple) else getattr(item, "args", ()) for item in items]


def _pipeline_name(pipeline: Any) -> Callable[[], tuple[str, str, str]]:
    stack = _stack(pipeline)  # read now: execute() empties it
    # The sync pipeline's flag is ``transaction``; the asyncio one's ``is_transaction`` (its
    # ``transaction`` is a method).
    flag = getattr(pipeline, "is_transaction", getattr(pipeline, "transaction", False))
    name = "MULTI … EXEC" if flag is True else "PIPELINE"

    def described() -> tuple[str, str, str]:
        return f"{name} ({len(stack)})", "", describe_pipeline(stack)

    return described


def _sync(original: Callable[..., Any], pipeline: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **options: Any) -> Any:
        recorder = current.get()
        if recorder is None or _inside.get():
            return original(self, *args, **options)
        what = _pipeline_name(self) if pipeline else functools.partial(describe, args)
        finish = _record(recorder, self, what)
        token = _inside.set(True)
        error = ""
        try:
            return original(self, *args, **options)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            _inside.reset(token)
            finish(error)

    return wrapper


def _async(original: Callable[..., Any], pipeline: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **options: Any) -> Any:
        recorder = current.get()
        if recorder is None or _inside.get():
            return await original(self, *args, **options)
        what = _pipeline_name(self) if pipeline else functools.partial(describe, args)
        finish = _record(recorder, self, what)
        token = _inside.set(True)
        error = ""
        try:
            return await original(self, *args, **options)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            _inside.reset(token)
            finish(error)

    return wrapper


# (class, attribute, wrapper factory, is a pipeline's execute)
_TARGETS: list[tuple[type[Any], str, Callable[..., Any], bool]] = [
    (redis.client.Redis, "execute_command", _sync, False),
    (redis.client.Pipeline, "execute", _sync, True),
    (redis.cluster.RedisCluster, "execute_command", _sync, False),
    (redis.asyncio.client.Redis, "execute_command", _async, False),
    (redis.asyncio.client.Pipeline, "execute", _async, True),
    (redis.asyncio.cluster.RedisCluster, "execute_command", _async, False),
]

_lock = threading.Lock()
_users = 0
_originals: list[tuple[type[Any], str, Any]] = []


def acquire() -> None:
    """One more request records: install the wrappers if it is the first."""
    global _users
    with _lock:
        _users += 1
        if _users > 1:
            return
        for cls, name, wrap, pipeline in _TARGETS:
            original = cls.__dict__[name]
            _originals.append((cls, name, original))
            setattr(cls, name, wrap(original, pipeline))


def release() -> None:
    """One request fewer: the last one takes the wrappers off."""
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        while _originals:
            cls, name, original = _originals.pop()
            setattr(cls, name, original)


def installed() -> bool:
    """Are the wrappers on (some request is recording)?"""
    return _users > 0
