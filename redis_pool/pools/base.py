"""What the sync and asyncio pools share: per-alias counters, per-process client names,
fork detection, retirement and the ``stats()`` snapshot."""

from __future__ import annotations

import mmap
import os
import secrets
import sys
from typing import Any

from redis.connection import (
    Connection,
    SSLConnection,
)

from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import default_client_name, hostname
from redis_pool.pools import hooks
from redis_pool.pools.connections import instrumented_connection_class
from redis_pool.stats.counters import Counters, PoolStats


def _fork_mark() -> mmap.mmap | None:
    """One byte that the kernel zeroes in every child process, whoever forks: a private
    page marked MADV_WIPEONFORK (Linux 4.14+). None where there is no such thing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        mark = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        # 18 is Linux's value; Python's mmap module names it only from 3.13 on.
        mark.madvise(getattr(mmap, "MADV_WIPEONFORK", 18))
    except (AttributeError, OSError, ValueError):
        return None
    mark[0] = 1
    return mark


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


# This process's pid, and a byte that a fork clears in the child. A fork from C (uWSGI's
# prefork, a C extension, ctypes' libc.fork()) runs no Python at-fork hook, so the hook
# alone would leave such a child on its parent's sockets; the byte cannot miss a fork.
_pid = os.getpid()
_mark = _fork_mark()


def _refresh_pid() -> int:
    global _pid
    _pid = os.getpid()
    if _mark is not None:
        _mark[0] = 1
    return _pid


os.register_at_fork(after_in_child=_refresh_pid)


def observability_id(alias: str) -> str:
    """The id redis-py's OpenTelemetry metrics put in a pool's name (``host:port_<id>``).

    Ours say the alias, so that contrib.opentelemetry names the series by alias from the
    name alone: redis-py also records from a pool's ``__del__``, during any garbage
    collection, where looking pools up (under a lock) could deadlock.
    """
    return f"redis_pool:{alias}:{secrets.token_hex(4)}"


class InstrumentedPoolMixin:
    """Per-alias counters, per-process client names, and the ``stats()`` snapshot."""

    alias: str
    counters: Counters
    address: str
    pid: int
    _rp_default_name: bool
    _rp_leak_threshold: float | None
    _rp_monitored: bool
    _pool_id: str
    max_connections: int
    connection_kwargs: dict[str, Any]

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

    def _rp_setup_direct(self, kwargs: dict[str, Any]) -> None:
        # Not an alias of REDIS_POOL: counted like one, never published, never renamed.
        self.alias = DIRECT_ALIAS
        self.address = direct_address(kwargs)
        self._rp_leak_threshold = None
        self.counters = Counters(None)
        self._rp_default_name = False
        self._rp_monitored = False

    def _rp_setup(self, config: PoolConfig) -> None:
        self.alias = config.alias
        self.address = config.address
        self._rp_leak_threshold = config.leak_detection_threshold
        self.counters = Counters(self._rp_leak_threshold)
        self._rp_default_name = not config.client_name_set
        self._rp_monitored = config.monitored

    def _checkpid(self, _mark: Any = _mark) -> None:
        # redis-py runs this on every checkout and return, and asks the kernel for the pid
        # each time (os.getpid() is a system call: ~0.2-0.4 us here, twice per cycle, more
        # than all of our counting). Reading the fork mark is not: only when a fork has
        # cleared it (or where there is none) is the pid asked for. Then redis-py's own
        # check (and reset) runs as before.
        if _mark is None or not _mark[0]:
            _refresh_pid()
        if self.pid != _pid:
            super()._checkpid()  # type: ignore[misc]

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

    def make_connection(self) -> Any:
        connection = super().make_connection()  # type: ignore[misc]
        connection._rp_counters = self.counters
        connection._rp_alias = self.alias
        if self._rp_monitored:
            # The first connection of this process (a forked child's too) starts the
            # monitor thread that publishes stats and looks for leaks; later calls are
            # one comparison. Not on the checkout path: only new connections get here.
            hooks.monitored_connection_made()
        return connection

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

    def _rp_made(self) -> int:
        """Connections made since reset (or fork)."""
        raise NotImplementedError

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters; never touches the pool or the network."""
        counters = self.counters
        if counters.pid != os.getpid():
            # Forked, and not used in this process yet: nothing of the parent's counts here.
            counters = Counters(getattr(self, "_rp_leak_threshold", None))
        open_now = counters.created - counters.closed
        in_use_now = getattr(self, "_rp_in_use", None)  # the async pools share this method
        made = 0
        if in_use_now is None:
            in_use, releases, checkouts = counters.in_use, counters.releases, counters.checkouts
        elif counters is self.counters:
            # The sync pools count timed returns (hold_slot) and untimed ones (releases) and
            # read the in-use gauge from the pool itself: checkouts follow. They make a
            # connection only when every one they have is checked out, so the connections
            # made since reset (or fork) are the most ever in use at once: the high-water
            # mark, with nothing to track on the checkout path.
            in_use = in_use_now()
            releases = counters.hold_slot + counters.releases
            checkouts = releases + in_use
            made = self._rp_made()
        else:  # forked, not used here yet
            in_use = releases = checkouts = 0
        wait, hold = counters.timings()
        return PoolStats(
            alias=self.alias,
            pid=os.getpid(),
            pool_class=type(self).__name__,
            address=self.address,
            max_connections=self.max_connections,
            open=open_now,
            in_use=in_use,
            idle=max(0, open_now - in_use),
            waiting=counters.waiting,
            created=counters.created,
            closed=counters.closed,
            checkouts=checkouts,
            releases=releases,
            waits=counters.waits,
            wait_timeouts=counters.wait_timeouts,
            exhausted=counters.exhausted,
            errors=counters.errors,
            leaks=counters.leaks,
            high_water=max(counters.high_water, in_use, made),
            wait=wait,
            hold=hold,
            since=counters.since,
            connect=counters.connect_timing(),
            host=hostname(),
            client_name=str(self.connection_kwargs.get("client_name") or ""),
            leak_detection_threshold=getattr(self, "_rp_leak_threshold", None),
            publishes=counters.publishes,
            publish_errors=counters.publish_errors,
        )
