"""Every private of redis-py (and of the stdlib queue) that the pools rely on, in one place.

redis-py is subclassed, not wrapped: its locking, fork check and health checks stay in
charge, and our counting runs inside its critical sections. That ties us to these names,
checked against redis-py 5.x-8.x by ``tests/test_redis_py_compat.py`` and redis-py's own
pool suite run against our pools (``python -m tests.redis_py_suite``):

Sync pools (``pools/sync.py``, ``pools/counting.py``, ``pools/retire.py``)
  ``ConnectionPool._checkpid`` (overridden below: the pid check without a system call),
  ``ConnectionPool.reset`` (rebuilds ``_in_use_connections``, which we replace with a
  counting set), ``_lock``, ``_in_use_connections`` (its ``add``/``remove`` are our
  checkout and return), ``_available_connections``, ``_created_connections``;
  ``BlockingConnectionPool.pool`` (built by ``queue_class(max_connections)``: our fair
  queue), ``_connections``; the queue's ``_get``/``_put``/``mutex`` (stdlib ``queue``).
Asyncio pools (``pools/asyncio.py``)
  ``ConnectionPool.get_available_connection``, ``can_get_connection``,
  ``ensure_connection``, ``_available_connections``, ``_in_use_connections``.
Connections (``pools/connections.py``)
  ``_connect`` (timed: a socket open), ``_sock`` (a blocking command's read deadline),
  ``_host_error`` (the server named in an auth failure), ``on_connect_check_health``;
  asyncio: ``_writer`` (open or not), ``_close`` (the close outside a task).
Translation for redis.asyncio (``pools/async_kwargs.py``)
  ``redis._parsers``' parser classes, ``Retry._backoff`` and ``Retry._supported_errors``.
"""

from __future__ import annotations

import mmap
import os
import sys
from typing import Any


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


class CheapPidCheck:
    """Mixed into a redis-py sync pool: its fork check without a system call."""

    pid: int

    def _checkpid(self, _mark: Any = _mark) -> None:
        # redis-py runs this on every checkout and return, and asks the kernel for the pid
        # each time (os.getpid() is a system call: ~0.2-0.4 us here, twice per cycle, more
        # than all of our counting). Reading the fork mark is not: only when a fork has
        # cleared it (or where there is none) is the pid asked for. Then redis-py's own
        # check (and reset) runs as before. ``_mark`` is a default argument so that a test
        # can pass None (no fork mark: tests/test_fork_c.py).
        if _mark is None or not _mark[0]:
            _refresh_pid()
        if self.pid != _pid:
            super()._checkpid()  # type: ignore[misc]


def current_pid() -> int:
    """This process's pid, as the pools' fork check knows it (no system call)."""
    return _pid
