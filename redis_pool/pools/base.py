"""What the sync and asyncio pools share: per-alias counters and identity, the hook fired
for each new connection, and the ``stats()`` snapshot (``PoolCommon``); and what the sync
pools share besides: fork detection, per-process client names and retirement
(``InstrumentedPoolMixin``)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from redis.connection import (
    Connection,
    SSLConnection,
)

from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import default_client_name
from redis_pool.pools import hooks
from redis_pool.pools._redis_py import CheapPidCheck
from redis_pool.pools.connections import instrumented_connection_class
from redis_pool.stats.counters import Counters, PoolIdentity, PoolStats

DIRECT_ALIAS = "(direct)"
"""The alias a pool built with redis-py's arguments (not from ``REDIS_POOL``) reports."""


def direct_address(kwargs: dict[str, Any]) -> str:
    """Where a directly built pool connects, for display: never a credential."""
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    connection_class = kwargs.get("connection_class", Connection)
    ssl = isinstance(connection_class, type) and issubclass(connection_class, SSLConnection)
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{'rediss' if ssl else 'redis'}://{host}:{port}/{kwargs.get('db', 0)}"


def pool_stats(pool: Any) -> PoolStats:
    """A snapshot of ``pool``'s counters; never touches the pool or the network.

    ``pool`` is one of ours, or anything with its ``alias``, ``address``,
    ``max_connections``, ``counters`` and ``connection_kwargs`` (an asyncio Cluster node,
    whose connections redis-py lends out itself: none counted in use).
    """
    counters: Counters = pool.counters
    threshold = getattr(pool, "_rp_leak_threshold", None)
    identity = PoolIdentity(
        alias=pool.alias,
        pool_class=type(pool).__name__,
        address=pool.address,
        max_connections=pool.max_connections,
        client_name=str(pool.connection_kwargs.get("client_name") or ""),
        leak_detection_threshold=threshold,
    )
    if counters.pid != os.getpid():
        # Forked, and not used in this process yet: nothing of the parent's counts here.
        return Counters(threshold).snapshot(identity, in_use=0, made=0)
    in_use = getattr(pool, "_rp_in_use", None)
    if in_use is None:
        return counters.snapshot(identity, in_use=0, made=0)
    return counters.snapshot(identity, in_use=in_use(), made=pool._rp_made())


def observability_id(alias: str) -> str:
    """The id redis-py's OpenTelemetry metrics put in a pool's name (``host:port_<id>``).

    Ours say the alias, so that contrib.opentelemetry names the series by alias from the
    name alone: redis-py also records from a pool's ``__del__``, during any garbage
    collection, where looking pools up (under a lock) could deadlock.
    """
    return f"redis_pool:{alias}:{secrets.token_hex(4)}"


class PoolCommon:
    """Per-alias counters and identity, sync and asyncio alike."""

    alias: str
    counters: Counters
    address: str
    max_connections: int
    connection_kwargs: dict[str, Any]
    _rp_default_name = False
    _rp_leak_threshold: float | None = None
    _rp_monitored = False
    _pool_id: str

    def _rp_setup(self, config: PoolConfig) -> None:
        self.alias = config.alias
        self.address = config.address
        self._rp_leak_threshold = config.leak_detection_threshold
        self.counters = Counters(self._rp_leak_threshold)
        self._rp_default_name = not config.client_name_set
        self._rp_monitored = config.monitored
        # redis-py's asyncio pools set no id of their own; the sync ones set a random one
        # in __init__, replaced again in reset(): see observability_id.
        self._pool_id = observability_id(config.alias)

    def _rp_setup_direct(self, kwargs: dict[str, Any]) -> None:
        # Not an alias of REDIS_POOL: counted like one, never published, never renamed.
        self.alias = DIRECT_ALIAS
        self.address = direct_address(kwargs)
        self._rp_leak_threshold = None
        self.counters = Counters(None)
        self._rp_default_name = False
        self._rp_monitored = False

    def make_connection(self) -> Any:
        connection = super().make_connection()  # type: ignore[misc]
        connection._rp_counters = self.counters
        connection._rp_alias = self.alias
        if self._rp_monitored:
            # The first connection of this process (a forked child's, an async-only
            # process's) starts the monitor thread that publishes stats and looks for
            # leaks; later calls are one comparison. Not on the checkout path: only new
            # connections get here.
            hooks.monitored_connection_made()
        return connection

    def _rp_in_use(self) -> int:
        """Connections checked out now, read from the pool's own structures."""
        raise NotImplementedError

    def _rp_made(self) -> int:
        """Connections made since reset (or fork): the most ever in use at once, since a
        pool makes one only when every one it has is checked out."""
        raise NotImplementedError

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters; never touches the pool or the network."""
        return pool_stats(self)


class InstrumentedPoolMixin(CheapPidCheck, PoolCommon):
    """The sync pools' share: ``PoolCommon``, fork detection, per-process client names,
    and retirement."""

    pid: int

    def _rp_init_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """redis-py's constructor arguments, from either caller: the registry passes the
        alias's ``PoolConfig``; anyone else (``from_url()``, a library, redis-py's own
        tests) passes redis-py's arguments, which are kept as given."""
        if args and isinstance(args[0], PoolConfig):
            config = args[0]
            self._rp_setup(config)
            kwargs = dict(config.kwargs, max_connections=config.max_connections)
            if config.pool_timeout is not None:
                kwargs["timeout"] = config.pool_timeout
        else:
            kwargs = dict(kwargs)
            if args:  # redis-py's positional order: connection_class, max_connections
                kwargs.update(zip(("connection_class", "max_connections"), args, strict=False))
            self._rp_setup_direct(kwargs)
        kwargs["connection_class"] = instrumented_connection_class(
            kwargs.get("connection_class", Connection)
        )
        return kwargs

    def reset(self) -> None:
        # reset() runs in __init__ (after redis-py set its random _pool_id) and, through
        # _checkpid(), first thing in a forked child: a child starts with its own counters
        # and its own client name.
        if self.alias != DIRECT_ALIAS:  # a pool of redis-py's arguments keeps redis-py's
            self._pool_id = observability_id(self.alias)
        if getattr(self, "counters", None) is not None and self.counters.pid != os.getpid():
            self.counters = Counters(self._rp_leak_threshold)
            if self._rp_default_name:
                self.connection_kwargs["client_name"] = default_client_name(self.alias)
        super().reset()  # type: ignore[misc]

    def in_use_connections(self) -> list[Any]:
        """The connections checked out now (for leak detection); never changes the pool."""
        raise NotImplementedError

    def retire(self, successor: InstrumentedPoolMixin | None = None) -> None:
        """This pool was replaced (settings changed): close its idle connections now and
        the ones lent out as they come back. Commands in flight finish undisturbed.

        Code still holding the old client (a view between two commands) is served by
        ``successor``, the alias's new pool, so that old and new pools never both grow:
        the server sees at most the old pool's connections still lent out plus the new
        pool's. Without a successor (the alias was removed) this pool serves them itself.
        """
        if successor is not None:
            pool: Any = self
            heir: Any = successor
            owned = type(pool).release

            def release(connection: Any) -> None:
                if getattr(connection, "_rp_counters", None) is pool.counters:
                    owned(pool, connection)
                else:  # the successor's (or a later pool's: it forwards on)
                    heir.release(connection)

            # Instance attributes: the class's methods, the hot path, stay as they were.
            pool.get_connection = lambda *args, **kwargs: heir.get_connection(*args, **kwargs)
            pool.release = release
        self._rp_retire()

    def _rp_retire(self) -> None:
        """Close idle connections, and every connection returned from now on."""
        raise NotImplementedError
