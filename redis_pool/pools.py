"""redis-py pools that count what they do, and name their connections per process.

Subclasses, not wrappers: redis-py's own locking, fork check (``_checkpid``) and health
checks stay in charge. The counting happens inside redis-py's own critical sections, so
it costs no lock of ours: the plain pool records checkouts and returns in its in-use set
(``_CountingSet.add`` / ``remove`` run under the pool's lock), the blocking pool in its
queue (``_CountingLifoQueue._get`` / ``_put`` run under the queue's mutex). Connects,
closes and errors are counted by the connection class, off the checkout path.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from functools import cache
from queue import LifoQueue
from time import monotonic, perf_counter
from typing import Any

from redis.connection import BlockingConnectionPool, ConnectionPool
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool import monitor
from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import default_client_name, hostname
from redis_pool.exceptions import PoolExhaustedError
from redis_pool.leaks import capture, note_late_return
from redis_pool.stats import Counters, PoolStats


class _CountingSet(set[Any]):
    """The plain pool's in-use set. redis-py adds to it on checkout and removes from it on
    return, both under the pool's lock, so the counters need no lock of their own.

    This is the hottest code of the app (benchmarks/bench_instrumentation.py holds it
    within 5% of redis-py's own cycle), hence the builtins bound as defaults: a checkout
    is one clock read; a return is one clock read and ``Counters.held``. The
    in-use gauge is the set's size, checkouts are returns plus it, and the high-water mark
    is the number of connections the pool made (see ``InstrumentedPoolMixin.stats``).
    """

    counters: Counters

    def add(self, connection: Any, _add: Any = set.add, _clock: Any = perf_counter) -> None:
        _add(self, connection)
        connection._rp_out = _clock()

    def remove(
        self, connection: Any, _remove: Any = set.remove, _clock: Any = perf_counter
    ) -> None:
        _remove(self, connection)  # KeyError: not ours (redis-py ignores it), not counted
        self.counters.held(_clock() - connection._rp_out)


class _LeakTrackingSet(_CountingSet):
    """``_CountingSet`` that also records where each checkout happened."""

    def add(self, connection: Any, *args: Any) -> None:
        super().add(connection)
        connection._rp_stack = capture()

    def remove(self, connection: Any, *args: Any) -> None:
        out = connection._rp_out
        super().remove(connection)
        held = perf_counter() - out
        if held > self.counters.leak_limit:
            note_late_return(self.counters, connection, out, held)


_NOTHING: Any = object()


class _Waiter:
    """One caller waiting for a connection: a returned one is handed to it directly."""

    __slots__ = ("item", "ready")

    def __init__(self, mutex: Any) -> None:
        self.ready = threading.Condition(mutex)
        self.item: Any = _NOTHING


class _CountingLifoQueue(LifoQueue[Any]):
    """The blocking pool's queue: fair to waiters, and counting checkouts, returns and
    callers that had to wait. Everything here runs under the queue's mutex.

    Fair: a returned connection goes straight to the longest waiter, first come first
    served, instead of back on the queue where the returning thread (still holding the
    GIL) would take it again on its next checkout and starve the waiters into
    ``PoolExhaustedError`` (redis-py's own queue does that). Free slots stay LIFO, so warm
    connections are reused first. Free slots hold a connection or redis-py's ``None``
    placeholder, so the in-use gauge is ``maxsize - len(queue)``.

    A waiter interrupted by any exception (a signal handler raising, KeyboardInterrupt,
    Celery's soft time limit, a gevent Timeout) leaves the line, and passes on a connection
    already handed to it: otherwise nobody would ever receive it and the slot is lost.
    """

    def __init__(self, maxsize: int, pool: BlockingRedisPool) -> None:
        super().__init__(maxsize)
        # A reentrant mutex, for two reasons. Its Condition.wait() takes it back without
        # being interruptible (a plain Lock's can be interrupted by a signal handler that
        # raises, leaving the waiter outside the lock it must hold to leave the line). And
        # it knows its owner, so an interrupted waiter can make sure it holds it.
        self.mutex = threading.RLock()  # type: ignore[assignment]
        self.not_empty = threading.Condition(self.mutex)
        self.not_full = threading.Condition(self.mutex)
        self.all_tasks_done = threading.Condition(self.mutex)
        # Pre-filled with redis-py's "no connection yet" placeholders, so that redis-py's
        # own filling loop finds the queue full at once and no fill counts as a return.
        self.queue.extend([None] * maxsize)
        self.counters = pool.counters
        self.alias = pool.alias
        self.timeout: float | None = pool.timeout
        self.waiters: deque[_Waiter] = deque()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.mutex:
            if self.waiters or not self.queue:
                return self._wait(block, timeout)
            return self._get()

    def _wait(self, block: bool, timeout: float | None) -> Any:
        counters = self.counters
        counters.waits += 1
        counters.waiting += 1
        start = monotonic()
        timed = False
        waiter = _Waiter(self.mutex)
        self.waiters.append(waiter)
        try:
            deadline = None if (block and timeout is None) else start + (timeout or 0.0)
            while waiter.item is _NOTHING:
                if deadline is None:
                    waiter.ready.wait()
                    continue
                remaining = deadline - monotonic()
                if not block or remaining <= 0.0:
                    break
                waiter.ready.wait(remaining)
            # A wait that ended empty-handed is a wait too: the timing's count is `waits`,
            # so its total and mean include the timeouts.
            counters.waited(monotonic() - start)
            timed = True
            if waiter.item is _NOTHING:
                counters.wait_timeouts += 1
                counters.exhausted += 1
                raise PoolExhaustedError(self.alias, self.maxsize, self.timeout)
            return self._handed(waiter.item)
        except BaseException:
            self._withdraw(waiter)
            if not timed:
                counters.waited(monotonic() - start)
            raise
        finally:
            counters.waiting -= 1

    def _withdraw(self, waiter: _Waiter) -> None:
        """``waiter`` leaves the line (timed out or interrupted), passing on a connection
        that was handed to it meanwhile."""
        mutex: Any = self.mutex
        while not mutex._is_owned():
            # Interrupted where Condition.wait() had let go of the lock: take it back (and
            # keep it: get()'s ``with`` releases it). A second interrupt while doing so
            # must not stop this, the first one is already on its way to the caller.
            with contextlib.suppress(BaseException):
                mutex.acquire()
        item = waiter.item
        if item is _NOTHING:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            return
        waiter.item = _NOTHING
        # Handed out, so counted as returned by its previous holder; not used here: the
        # next waiter's or the queue's, as a return would have made it.
        if self.waiters:
            heir = self.waiters.popleft()
            heir.item = item
            heir.ready.notify()
        else:
            self.queue.append(item)

    def _handed(self, item: Any) -> Any:
        """A returned connection handed to a waiter: a checkout (in use did not change)."""
        if item is not None:
            item._rp_out = perf_counter()
        return item

    def _get(self) -> Any:
        item = self.queue.pop()
        if item is not None:  # None: redis-py makes the connection (make_connection marks it)
            item._rp_out = perf_counter()
        return item

    def _put(self, item: Any) -> None:
        counters = self.counters
        if item is None:
            # redis-py returns a placeholder for a connection it does not own: a return
            # without a hold time.
            counters.releases += 1
        else:
            counters.held(perf_counter() - item._rp_out)
        if self.waiters:
            waiter = self.waiters.popleft()
            waiter.item = item
            waiter.ready.notify()
        else:
            self.queue.append(item)


class _LeakTrackingLifoQueue(_CountingLifoQueue):
    """``_CountingLifoQueue`` that also records where each checkout happened."""

    def _get(self) -> Any:
        item = super()._get()
        if item is not None:
            item._rp_stack = capture()
        return item

    def _handed(self, item: Any) -> Any:
        item = super()._handed(item)
        if item is not None:
            item._rp_stack = capture()
        return item

    def _put(self, item: Any) -> None:
        out = getattr(item, "_rp_out", None)
        super()._put(item)
        if out is not None:
            held = perf_counter() - out
            if held > self.counters.leak_limit:
                note_late_return(self.counters, item, out, held)


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


def auth_failure(exc: AuthenticationError, alias: str | None, host: str) -> AuthenticationError:
    """``exc`` retold: redis-py's text names neither the alias nor the server. Ours names
    both, and never the username or the password."""
    return type(exc)(
        f"Redis alias {alias!r} could not authenticate to {host}: {exc} Check the alias's "
        "'username' and 'password' (not shown)."
    )


@cache
def instrumented_connection_class(base: type[Any]) -> type[Any]:
    """A subclass of ``base`` that reports socket opens, closes and errors."""

    class Instrumented(base):  # type: ignore[misc]
        _rp_counters: Counters | None = None
        _rp_open = False
        _rp_out: float | None = None
        _rp_stack: Any = None
        _rp_reported: float | None = None
        _rp_alias: str | None = None

        def on_connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().on_connect_check_health(*args, **kwargs)
            except AuthenticationError as exc:
                raise auth_failure(exc, self._rp_alias, self._host_error()) from None

        def _connect(self) -> Any:
            start = perf_counter()
            try:
                sock = super()._connect()
            except Exception:
                if self._rp_counters is not None:
                    self._rp_counters.add("errors")
                raise
            if self._rp_counters is not None:
                self._rp_counters.connected(perf_counter() - start)
                self._rp_open = True
            return sock

        def disconnect(self, *args: Any, **kwargs: Any) -> None:
            super().disconnect(*args, **kwargs)
            if self._rp_open:
                self._rp_open = False
                if self._rp_counters is not None:
                    self._rp_counters.add("closed")
                    # redis-py disconnects a connection that failed a send or a read from
                    # inside the except block that caught the failure. Counting it here,
                    # once per broken connection, keeps the command path free of wrappers
                    # (wrapping send/read cost ~0.5 us per command).
                    failure = sys.exc_info()[1]
                    if isinstance(failure, (RedisConnectionError, RedisTimeoutError, OSError)):
                        self._rp_counters.add("errors")

    Instrumented.__name__ = Instrumented.__qualname__ = base.__name__
    Instrumented.__module__ = base.__module__
    return Instrumented


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


class InstrumentedPoolMixin:
    """Per-alias counters, per-process client names, and the ``stats()`` snapshot."""

    alias: str
    counters: Counters
    address: str
    pid: int
    _rp_default_name: bool
    _rp_leak_threshold: float | None
    _rp_monitored: bool
    max_connections: int
    connection_kwargs: dict[str, Any]

    def _rp_setup(self, config: PoolConfig) -> None:
        self.alias = config.alias
        self.address = config.address
        self._rp_leak_threshold = config.leak_detection_threshold
        self.counters = Counters(self._rp_leak_threshold)
        self._rp_default_name = not config.client_name_set
        self._rp_monitored = monitor.wanted(config)

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
        # reset() runs in __init__ and, through _checkpid(), first thing in a forked
        # child: a child starts with its own counters and its own client name.
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
            monitor.ensure_running()
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


class RedisPool(InstrumentedPoolMixin, ConnectionPool):
    """Plain pool: fails at once when all ``max_connections`` are in use."""

    _lock: Any
    _in_use_connections: Any
    _created_connections: int

    def __init__(self, config: PoolConfig) -> None:
        self._rp_setup(config)
        kwargs = dict(config.kwargs)
        kwargs["connection_class"] = instrumented_connection_class(kwargs["connection_class"])
        super().__init__(max_connections=config.max_connections, **kwargs)

    def reset(self) -> None:
        # Under the pool's lock: redis-py publishes the new pid at the end of reset(), and
        # another thread of a forked child must not reach the in-use set before it counts.
        with self._lock:
            super().reset()
            counting = _LeakTrackingSet if self.counters.capture_stacks else _CountingSet
            in_use = counting()
            in_use.counters = self.counters
            self._in_use_connections = in_use

    def _rp_in_use(self) -> int:
        return len(self._in_use_connections)

    def _rp_made(self) -> int:
        return self._created_connections

    def make_connection(self) -> Any:
        # Runs under the pool's lock, before redis-py raises its own MaxConnectionsError.
        if self._created_connections >= self.max_connections:
            self.counters.exhausted += 1
            raise PoolExhaustedError(self.alias, self.max_connections, None)
        return super().make_connection()

    def in_use_connections(self) -> list[Any]:
        if self.pid != os.getpid():
            return []
        with self._lock:
            return list(self._in_use_connections)

    def _rp_retire(self) -> None:
        with self._lock:
            in_use = self._in_use_connections
            in_use.__class__ = retire_class(type(in_use))
            for connection in self._available_connections:
                connection.disconnect()


class BlockingRedisPool(InstrumentedPoolMixin, BlockingConnectionPool):
    """Blocking pool: waits up to ``pool_timeout`` seconds for a free connection."""

    pool: _CountingLifoQueue
    _connections: list[Any]
    timeout: float | None

    def __init__(self, config: PoolConfig) -> None:
        self._rp_setup(config)
        kwargs = dict(config.kwargs)
        kwargs["connection_class"] = instrumented_connection_class(kwargs["connection_class"])
        make_queue: Callable[[int], _CountingLifoQueue] = self._rp_queue
        super().__init__(  # type: ignore[no-untyped-call]
            max_connections=config.max_connections,
            timeout=config.pool_timeout,
            queue_class=make_queue,
            **kwargs,
        )

    def _rp_queue(self, maxsize: int) -> _CountingLifoQueue:
        # redis-py builds the queue in reset(), after our reset() made this process's
        # counters: the queue counts from its first get.
        counting = _LeakTrackingLifoQueue if self.counters.capture_stacks else _CountingLifoQueue
        return counting(maxsize, self)

    def _rp_in_use(self) -> int:
        queue = self.pool
        return queue.maxsize - len(queue.queue)

    def _rp_made(self) -> int:
        return len(self._connections)

    def make_connection(self) -> Any:
        connection = super().make_connection()
        # Made for a checkout the queue already counted (it handed out a placeholder).
        connection._rp_out = perf_counter()
        if self.counters.capture_stacks:
            connection._rp_stack = capture()
        return connection

    def in_use_connections(self) -> list[Any]:
        if self.pid != os.getpid():
            return []
        queue = self.pool
        with queue.mutex:
            idle = {id(c) for c in queue.queue if c is not None}
            connections = list(self._connections)
        return [c for c in connections if id(c) not in idle]

    def _rp_retire(self) -> None:
        queue = self.pool
        with queue.mutex:
            queue.__class__ = retire_class(type(queue))
            for connection in queue.queue:
                if connection is not None:
                    connection.disconnect()


def build_pool(config: PoolConfig) -> RedisPool | BlockingRedisPool:
    """The pool for one alias. Constructs objects only: no network."""
    if config.pool_timeout is None:
        return RedisPool(config)
    return BlockingRedisPool(config)
