"""The instrumented connection classes, sync and asyncio, from one factory.

One policy (``_Policy``): count socket opens, closes and errors into the pool's counters,
give a blocking command's reply a read deadline of its own (``pools/deadlines.py``), and
retell an authentication failure with the alias and the server. Two shells carry it,
because redis-py's sync and asyncio connections differ in what they can share: which
methods are coroutines, where the read deadline lives (the socket's timeout, or
``socket_timeout`` read per reply), and how a failed connection is dropped.
"""

from __future__ import annotations

import sys
from functools import cache
from time import perf_counter
from typing import Any

from redis.asyncio.connection import AbstractConnection as AsyncAbstractConnection
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool.pools.deadlines import (
    BLOCKING_COMMANDS,
    NOT_BLOCKING,
    keepalive_defaults,
    reply_timeout,
)
from redis_pool.stats.counters import Counters


def auth_failure(exc: AuthenticationError, alias: str | None, host: str) -> AuthenticationError:
    """``exc`` retold: redis-py's text names neither the alias nor the server. Ours names
    both, and never the username or the password."""
    return type(exc)(
        f"Redis alias {alias!r} could not authenticate to {host}: {exc} Check the alias's "
        "'username' and 'password' (not shown)."
    )


class _Policy:
    """What the sync and asyncio connections of our pools do alike. The pool sets
    ``_rp_counters`` and ``_rp_alias`` on each connection it makes."""

    _rp_counters: Counters | None = None
    _rp_alias: str | None = None
    _rp_open = False
    _rp_out: float | None = None  # the clock at checkout (pools/counting.py)
    _rp_stack: Any = None  # where it was checked out (leak detection)
    _rp_reported: float | None = None
    _rp_raised = False  # the read deadline is a blocking command's, not socket_timeout
    socket_timeout: float | None  # redis-py's

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keepalive_defaults(self, kwargs)

    def _rp_deadline(self, args: tuple[Any, ...]) -> Any:
        """The reply deadline of the blocking command ``args`` just sent (block time plus
        one socket_timeout of grace; None: none), or ``NOT_BLOCKING``. The shells call it
        only for a name in ``BLOCKING_COMMANDS``: every other command pays one set lookup."""
        return reply_timeout(args, self.socket_timeout)

    def pack_commands(self, commands: Any) -> Any:
        # A pipeline sends without send_command(): its replies get socket_timeout.
        if self._rp_raised:
            self._rp_restore()
        return super().pack_commands(commands)  # type: ignore[misc]

    def _rp_restore(self) -> None:
        raise NotImplementedError

    def _rp_auth_failure(self, exc: AuthenticationError) -> AuthenticationError:
        return auth_failure(exc, self._rp_alias, self._host_error())  # type: ignore[attr-defined]

    def _rp_connect_failed(self) -> None:
        if self._rp_counters is not None:
            self._rp_counters.add("errors")

    def _rp_connected(self, start: float) -> None:
        if self._rp_counters is not None:
            self._rp_counters.connected(perf_counter() - start)
            self._rp_open = True

    def _rp_closed(self, failed: bool) -> None:
        """The socket was closed (after a failure, if ``failed``): counted once."""
        if self._rp_open:
            self._rp_open = False
            if self._rp_counters is not None:
                self._rp_counters.add("closed")
                if failed:
                    self._rp_counters.add("errors")


class _Sync(_Policy):
    """The shell around redis-py's sync connections."""

    _sock: Any

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        # Through super(), not an inlined copy of redis-py's body: code that patches or
        # subclasses send_command (mocks, tracers) must still see every command.
        if self._rp_raised:
            self._rp_restore()
        super().send_command(*args, **kwargs)  # type: ignore[misc]
        if args[0] in BLOCKING_COMMANDS:
            # The reply comes when the block time is over: read it with the block time
            # plus grace, or with no deadline for a block forever.
            timeout = self._rp_deadline(args)
            if timeout is not NOT_BLOCKING and self._sock is not None:
                self._sock.settimeout(timeout)
                self._rp_raised = True

    def _rp_restore(self) -> None:
        self._rp_raised = False
        if self._sock is not None:
            self._sock.settimeout(self.socket_timeout)

    def on_connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().on_connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except AuthenticationError as exc:
            raise self._rp_auth_failure(exc) from None

    def _connect(self) -> Any:
        start = perf_counter()
        try:
            sock = super()._connect()  # type: ignore[misc]
        except Exception:
            self._rp_connect_failed()
            raise
        self._rp_connected(start)
        return sock

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        super().disconnect(*args, **kwargs)  # type: ignore[misc]
        # redis-py disconnects a connection that failed a send or a read from inside the
        # except block that caught the failure. Counting it here, once per broken
        # connection, keeps the command path free of wrappers (wrapping send/read cost
        # ~0.5 us per command).
        failure = sys.exc_info()[1]
        self._rp_closed(isinstance(failure, (RedisConnectionError, RedisTimeoutError, OSError)))


class _Async(_Policy):
    """The shell around redis.asyncio's connections."""

    _rp_socket_timeout: float | None = None
    _writer: Any

    async def send_command(self, *args: Any, **kwargs: Any) -> None:
        if self._rp_raised:
            self._rp_restore()
        await super().send_command(*args, **kwargs)  # type: ignore[misc]  # as _Sync's
        if args[0] in BLOCKING_COMMANDS:
            # redis.asyncio reads a reply with socket_timeout as its deadline: for a
            # blocking command that is the block time plus grace, or no deadline for a
            # block forever, until the next command.
            timeout = self._rp_deadline(args)
            if timeout is not NOT_BLOCKING:
                self._rp_socket_timeout = self.socket_timeout
                self.socket_timeout = timeout
                self._rp_raised = True

    def _rp_restore(self) -> None:
        self._rp_raised = False
        self.socket_timeout = self._rp_socket_timeout

    async def on_connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().on_connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except AuthenticationError as exc:
            raise self._rp_auth_failure(exc) from None

    async def _connect(self) -> None:
        start = perf_counter()
        try:
            await super()._connect()  # type: ignore[misc]
        except Exception:
            self._rp_connect_failed()
            raise
        self._rp_connected(start)
        self._rp_open = True

    def _rp_dropped(self) -> None:
        if self._rp_raised:  # a reconnect's handshake must have socket_timeout
            self._rp_restore()
        # Errors were counted by disconnect(); _rp_open first: a test double may have no
        # _writer.
        if self._rp_open and self._writer is None:
            self._rp_closed(failed=False)

    def _close(self) -> None:
        # The synchronous close redis-py uses outside a task (and in __del__).
        super()._close()  # type: ignore[misc]
        self._rp_dropped()

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        # redis-py drops an open connection with nowait=True (or error=...) exactly when a
        # send or read failed or timed out, or a health check failed: counting here keeps
        # the per-command path free of wrappers of ours. The arguments go on as given: a
        # connection class of the user's may not take them all.
        nowait = kwargs.get("nowait", args[0] if args else False)
        error = kwargs.get("error", args[1] if len(args) > 1 else None)
        failed = bool(nowait or error is not None) and self._rp_open
        if failed and self._rp_counters is not None:
            self._rp_counters.add("errors")  # now: the close below may never complete
        try:
            await super().disconnect(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._rp_dropped()


@cache
def instrumented_connection_class(base: type[Any]) -> type[Any]:
    """A subclass of the connection class ``base`` (sync or redis.asyncio) that counts
    socket opens, closes and errors and gives blocking commands their read deadline."""
    shell: type[_Policy] = _Async if issubclass(base, AsyncAbstractConnection) else _Sync

    class Instrumented(shell, base):  # type: ignore[valid-type,misc]
        pass

    Instrumented.__name__ = Instrumented.__qualname__ = base.__name__
    Instrumented.__module__ = base.__module__
    return Instrumented


# The same factory, under the name the asyncio callers know it by.
instrumented_async_connection_class = instrumented_connection_class
