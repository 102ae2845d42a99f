"""``aget_redis()``: one ``redis.asyncio`` client per alias and event loop, closed with its loop.

asyncio connections belong to the loop that opened them, so each loop gets its own pools,
kept on the loop object itself. They are disconnected when the loop closes: like
channels_redis, we wrap ``loop.close()``, which ``asyncio.run()``, asgiref's
``async_to_sync`` and uvicorn all call, and run the disconnects on that loop first.
A loop that is dropped without being closed takes its pools with it (and Python warns about
both), rather than keeping them alive in a module-level dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import types
import weakref
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio

from redis_pool import registry
from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import DEFAULT_ALIAS, STANDALONE
from redis_pool.multiplex import MultiplexedRedis, MultiplexStats
from redis_pool.pools.asyncio import AsyncEntry, build_async
from redis_pool.stats.counters import PoolStats
from redis_pool.topologies.build import AsyncTopologyEntry, build_async_topology
from redis_pool.topologies.sentinel import AsyncSentinelEntry

_ATTR = "_redis_pool_aio"  # where a loop keeps its _LoopPools

# How long a retired multiplexed client lets the commands in flight finish before its
# shared connection closes (they fail then, as a pool's borrowed connections never do).
RETIRE_DRAIN_SECONDS = 5.0


@dataclass
class MultiplexedEntry:
    """A multiplexed alias on one loop: the alias's async entry, built as for any alias (its
    pool lends the dedicated connections), with ``MultiplexedRedis`` clients on top.

    Sentinel: the replicas' client is multiplexed too (its shared connection goes to a
    replica, as the replica pool's connections do). Same interface as ``AsyncEntry``.
    """

    inner: AsyncEntry | AsyncTopologyEntry
    client: MultiplexedRedis
    replica: MultiplexedRedis | None = None
    muxes: list[MultiplexedRedis] = field(default_factory=list)

    @property
    def config(self) -> PoolConfig:
        return self.inner.config

    def retire(self) -> None:
        self.inner.retire()

    def connected(self) -> bool:
        return self.inner.connected() or any(m.multiplexed.connected for m in self.muxes)

    async def aclose(self, *, in_use: bool = True) -> None:
        """The shared connections first (their commands may wait on nothing of the pool's),
        then the pool; ``in_use=False`` (retired) lets commands in flight finish first."""
        if not in_use:
            await self._drain()
        await asyncio.gather(*(m.multiplexed.aclose() for m in self.muxes))
        await self.inner.aclose(in_use=in_use)

    async def _drain(self) -> None:
        deadline = time.monotonic() + RETIRE_DRAIN_SECONDS
        # Polled: the connection keeps no "idle" event, and this runs once per retirement.
        while time.monotonic() < deadline and any(
            s.in_flight or s.queued or s.waiting for s in self.mux_stats()
        ):
            await asyncio.sleep(0.01)

    def stats(self) -> list[PoolStats]:
        return self.inner.stats()

    def mux_stats(self) -> list[MultiplexStats]:
        return [m.stats() for m in self.muxes]

    def connections(self) -> list[Any]:
        shared = [m.multiplexed.connection for m in self.muxes]
        return [*self.inner.connections(), *(c for c in shared if c is not None)]


# What one alias needs on one loop: a client, and how to close and count it.
LoopEntry = AsyncEntry | AsyncTopologyEntry | MultiplexedEntry


def build_entry(config: PoolConfig) -> LoopEntry:
    """The async side of one alias, for the running loop: the one place that branches on
    topology and multiplexing. Constructs objects only: no network."""
    inner = build_async(config) if config.topology == STANDALONE else build_async_topology(config)
    if not config.multiplex:
        return inner
    # E012 refuses Cluster: a cluster client has no single pool whose connection to share.
    client = _multiplexed(config, inner.client)
    replica = None
    if isinstance(inner, AsyncSentinelEntry):
        replica = _multiplexed(config, inner.replica)
    muxes = [client] if replica is None else [client, replica]
    return MultiplexedEntry(inner, client, replica, muxes)


def _multiplexed(config: PoolConfig, plain: redis.asyncio.Redis) -> MultiplexedRedis:
    return MultiplexedRedis(plain.connection_pool, max_in_flight=config.max_in_flight)


class _LoopPools:
    """The async pools of one event loop, by alias."""

    __slots__ = (
        "__weakref__", "clients", "closing", "entries", "loop", "muxes", "pid", "retired"
    )  # fmt: skip

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pid = os.getpid()
        self.entries: dict[str, LoopEntry] = {}
        self.clients: dict[str, redis.asyncio.Redis] = {}  # the hot path reads only this
        # Entries replaced after a settings change, still holding connections lent out.
        self.retired: list[LoopEntry] = []
        self.closing: set[asyncio.Task[None]] = set()
        # Every multiplexed client handed out, retired ones included: a task still holding
        # a retired one reopens its shared connection, which the loop's close must close.
        self.muxes: weakref.WeakSet[MultiplexedRedis] = weakref.WeakSet()

    def retire(self, alias: str) -> None:
        """Stop handing out ``alias``'s pool and close it on its loop (any thread)."""
        entry = self.entries.pop(alias)
        self.clients.pop(alias, None)
        entry.retire()
        self.retired.append(entry)
        # A closed loop has closed its pools already.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._close_retired, entry)

    def _close_retired(self, entry: LoopEntry) -> None:
        # Idle connections close now; borrowed ones close as they are returned.
        task = self.loop.create_task(entry.aclose(in_use=False))
        self.closing.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self.closing.discard(task)
            # Cancelled (asyncio.run() cancels what is left) or with connections still
            # lent out: keep it for the loop's close to finish.
            if not entry.connected() and entry in self.retired:
                self.retired.remove(entry)

        task.add_done_callback(done)

    async def aclose(self) -> None:
        """Disconnect everything this loop's pools opened (runs on the loop)."""
        if self.closing:
            await asyncio.gather(*self.closing, return_exceptions=True)
        entries = [*self.entries.values(), *self.retired]
        self.entries.clear()
        self.retired.clear()
        # Errors while closing sockets of a loop that is going away are of no use to anyone.
        await asyncio.gather(*(entry.aclose() for entry in entries), return_exceptions=True)
        muxes = list(self.muxes)
        await asyncio.gather(*(m.multiplexed.aclose() for m in muxes), return_exceptions=True)


_lock = threading.Lock()
_live: weakref.WeakSet[_LoopPools] = weakref.WeakSet()  # for stats and settings changes
_inherited: list[_LoopPools] = []  # see _after_fork_in_child


def aget_redis(alias: str = DEFAULT_ALIAS) -> redis.asyncio.Redis:
    """The ``redis.asyncio`` client of ``alias`` for the running event loop.

    Call it from async code. It returns at once (a dict lookup once the loop has its
    pool); ``await aget_redis()`` works too. No network: connections open on first use.
    """
    loop = _running_loop()
    pools: _LoopPools | None = getattr(loop, _ATTR, None)
    if pools is not None:
        client = pools.clients.get(alias)
        if client is not None:
            return client
    return _get_slow(loop, alias)


def aget_replica(alias: str = DEFAULT_ALIAS) -> redis.asyncio.Redis:
    """``get_replica()`` for async code: a Sentinel alias's replicas (the master when none
    is up), for reads that may lag; any other alias: the same client as ``aget_redis()``."""
    entry = _entry(_running_loop(), alias)
    if isinstance(entry, MultiplexedEntry):
        return entry.client if entry.replica is None else entry.replica
    if isinstance(entry, AsyncSentinelEntry):
        return entry.replica
    return entry.client


def _running_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "aget_redis() needs a running event loop: call it from async code "
            "(sync code uses get_redis())."
        ) from None


def _get_slow(loop: asyncio.AbstractEventLoop, alias: str) -> redis.asyncio.Redis:
    return _entry(loop, alias).client


def _entry(loop: asyncio.AbstractEventLoop, alias: str) -> LoopEntry:
    # Same config object, same errors (AliasNotFound, ImproperlyConfigured) as get_redis().
    config = registry.get_config(alias)
    with _lock:
        pools = _pools_for(loop)
        entry = pools.entries.get(alias)
        if entry is not None and entry.config is not config:
            pools.retire(alias)
            entry = None
        if entry is None:
            entry = build_entry(config)
            if isinstance(entry, MultiplexedEntry):
                pools.muxes.update(entry.muxes)
            pools.entries[alias] = entry
            pools.clients[alias] = entry.client
        return entry


def _pools_for(loop: asyncio.AbstractEventLoop) -> _LoopPools:
    pools: _LoopPools | None = getattr(loop, _ATTR, None)
    if pools is not None and pools.pid == os.getpid():
        return pools
    pools = _LoopPools(loop)
    try:
        setattr(loop, _ATTR, pools)
        _wrap_close(loop)
    except AttributeError:
        raise RuntimeError(
            f"aget_redis() cannot track {type(loop).__name__}: its pools must be closed with "
            "it, which needs a loop that accepts attributes (asyncio's and uvloop's do)."
        ) from None
    _live.add(pools)
    return pools


def _wrap_close(loop: asyncio.AbstractEventLoop) -> None:
    original = loop.close

    def close(self: asyncio.AbstractEventLoop) -> None:
        if self.is_running() or self.is_closed():
            return original()  # raises for a running loop: keep the wrapper for later
        self.close = original  # type: ignore[method-assign]
        try:
            _close_pools(self)
        finally:
            original()

    loop.close = types.MethodType(close, loop)  # type: ignore[method-assign]


def _close_pools(loop: asyncio.AbstractEventLoop) -> None:
    with _lock:
        pools: _LoopPools | None = loop.__dict__.pop(_ATTR, None)
        if pools is None or pools.pid != os.getpid():
            return
        _live.discard(pools)
        pools.clients.clear()
    if not (pools.entries or pools.retired or pools.closing or pools.muxes):
        return
    if asyncio._get_running_loop() is None:
        loop.run_until_complete(pools.aclose())
    else:
        # close() called from code running another loop: this thread cannot run ``loop``
        # (asyncio allows one running loop per thread), so a short-lived thread does.
        worker = threading.Thread(
            target=loop.run_until_complete, args=(pools.aclose(),), name="redis_pool-aclose"
        )
        worker.start()
        worker.join()


def async_entries(alias: str = DEFAULT_ALIAS) -> list[Any]:
    """This process's entries for ``alias``: one per live event loop that has used it."""
    with _lock:
        return [pools.entries[alias] for pools in list(_live) if alias in pools.entries]


def async_pool_stats(alias: str = DEFAULT_ALIAS) -> list[PoolStats]:
    """This process's statistics for ``alias``'s async pools: one per live event loop."""
    return [stats for entry in async_entries(alias) for stats in entry.stats()]


def async_multiplex_stats(alias: str = DEFAULT_ALIAS) -> list[MultiplexStats]:
    """This process's multiplexed clients of ``alias``: one per live event loop (two for a
    Sentinel alias: master and replicas); empty unless the alias sets ``multiplex``."""
    with _lock:
        entries = [pools.entries[alias] for pools in list(_live) if alias in pools.entries]
    return [s for e in entries if isinstance(e, MultiplexedEntry) for s in e.mux_stats()]


def refresh() -> None:
    """Retire every loop's pool whose alias the settings changed or removed."""
    with _lock:
        live = list(_live)
        aliases = {alias for pools in live for alias in pools.entries}
    current: dict[str, object] = {}
    for alias in aliases:
        try:
            current[alias] = registry.get_config(alias)
        except Exception:  # removed or now misconfigured: aget_redis() will say so
            current[alias] = None
    with _lock:
        for pools in live:
            for alias, entry in list(pools.entries.items()):
                if current.get(alias) is not entry.config:
                    pools.retire(alias)


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """The one ``setting_changed`` receiver: the sync registry reloads the configs first,
    then every loop retires the async pools whose config was replaced."""
    if setting in ("REDIS_POOL", "SETTINGS_MODULE"):
        registry.load()
        refresh()


def _after_fork_in_child() -> None:
    """Forget the parent's loops: their sockets and selector are the parent's.

    Nothing here may touch a parent's loop (its epoll set is shared with the parent), so
    the child only closes its own copies of the socket file descriptors and keeps the
    objects referenced, so that no finalizer later runs against the parent's loop.
    """
    global _lock, _live
    inherited = list(_live)
    _lock = threading.Lock()  # another thread may have held it at fork time
    _live = weakref.WeakSet()
    for pools in inherited:
        pools.clients.clear()
        for entry in [*pools.entries.values(), *pools.retired]:
            for connection in entry.connections():
                _close_inherited_socket(connection)
        for mux in list(pools.muxes):  # a retired client's shared connection, reopened
            if mux.multiplexed.connection is not None:
                _close_inherited_socket(mux.multiplexed.connection)
        _inherited.append(pools)


def _close_inherited_socket(connection: Any) -> None:
    writer = getattr(connection, "_writer", None)
    if writer is None:
        return
    transport_socket = writer.get_extra_info("socket")
    # asyncio exposes a TransportSocket without close(); the socket it wraps is closed
    # directly: this closes the child's descriptor only (no shutdown), the parent's
    # connection is untouched.
    raw = getattr(transport_socket, "_sock", None)
    if raw is not None:
        raw.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
