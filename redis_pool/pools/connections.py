"""The instrumented connection classes, sync and asyncio: they count socket opens, closes
and errors, and give blocking commands a read deadline of their own."""

from __future__ import annotations

import sys
from functools import cache
from time import perf_counter
from typing import Any

from redis import connection as sync_connection
from redis._parsers import (
    _AsyncHiredisParser,
    _AsyncRESP2Parser,
    _AsyncRESP3Parser,
    _HiredisParser,
    _RESP2Parser,
    _RESP3Parser,
)
from redis.asyncio import connection as async_connection
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
        _rp_raised = False  # the socket's timeout is a blocking command's, not ours

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            keepalive_defaults(self, kwargs)

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            # Through super(), not an inlined copy of redis-py's body: code that patches
            # or subclasses send_command (mocks, tracers) must still see every command.
            if self._rp_raised:
                self._rp_restore()
            super().send_command(*args, **kwargs)
            if args[0] in BLOCKING_COMMANDS:
                self._rp_block(args)

        def _rp_block(self, args: tuple[Any, ...]) -> None:
            # The reply comes when the block time is over: read it with the block time
            # plus grace, or with no deadline for a block forever (blocking.py).
            timeout = reply_timeout(args, self.socket_timeout)
            if timeout is not NOT_BLOCKING and self._sock is not None:
                self._sock.settimeout(timeout)
                self._rp_raised = True

        def pack_commands(self, commands: Any) -> Any:
            # A pipeline sends without send_command(): its replies get socket_timeout.
            if self._rp_raised:
                self._rp_restore()
            return super().pack_commands(commands)

        def _rp_restore(self) -> None:
            self._rp_raised = False
            if self._sock is not None:
                self._sock.settimeout(self.socket_timeout)

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


# config/ resolves settings to redis-py's sync classes; these are their asyncio twins.
ASYNC_CONNECTION: dict[type[Any], type[Any]] = {
    sync_connection.Connection: async_connection.Connection,
    sync_connection.SSLConnection: async_connection.SSLConnection,
    sync_connection.UnixDomainSocketConnection: async_connection.UnixDomainSocketConnection,
}


ASYNC_PARSER: dict[type[Any], type[Any]] = {
    _HiredisParser: _AsyncHiredisParser,
    _RESP2Parser: _AsyncRESP2Parser,
    _RESP3Parser: _AsyncRESP3Parser,
}


@cache
def instrumented_async_connection_class(base: type[Any]) -> type[Any]:
    """A subclass of the asyncio connection ``base`` reporting opens, closes and errors."""

    class Instrumented(base):  # type: ignore[misc]
        _rp_counters: Counters | None = None
        _rp_open = False
        _rp_out: float | None = None
        _rp_stack: Any = None
        _rp_alias: str | None = None
        _rp_raised = False  # socket_timeout is a blocking command's, not ours
        _rp_socket_timeout: float | None = None
        socket_timeout: float | None  # redis-py's, set in __init__

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            keepalive_defaults(self, kwargs)

        async def send_command(self, *args: Any, **kwargs: Any) -> None:
            if self._rp_raised:
                self._rp_restore()
            await super().send_command(*args, **kwargs)  # through super(): as pools.py
            if args[0] in BLOCKING_COMMANDS:
                self._rp_block(args)

        def _rp_block(self, args: tuple[Any, ...]) -> None:
            # redis.asyncio reads a reply with socket_timeout as its deadline: for a
            # blocking command that is the block time plus grace, or no deadline for a
            # block forever (blocking.py), until the next command.
            timeout = reply_timeout(args, self.socket_timeout)
            if timeout is not NOT_BLOCKING:
                self._rp_socket_timeout = self.socket_timeout
                self.socket_timeout = timeout
                self._rp_raised = True

        def pack_commands(self, commands: Any) -> Any:
            # A pipeline sends without send_command(): its replies get socket_timeout.
            if self._rp_raised:
                self._rp_restore()
            return super().pack_commands(commands)

        def _rp_restore(self) -> None:
            self._rp_raised = False
            self.socket_timeout = self._rp_socket_timeout

        async def on_connect_check_health(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super().on_connect_check_health(*args, **kwargs)
            except AuthenticationError as exc:
                raise auth_failure(exc, self._rp_alias, self._host_error()) from None

        async def _connect(self) -> None:
            start = perf_counter()
            try:
                await super()._connect()
            except Exception:
                if self._rp_counters is not None:
                    self._rp_counters.add("errors")
                raise
            if self._rp_counters is not None:
                self._rp_counters.connected(perf_counter() - start)
            self._rp_open = True

        def _rp_closed(self) -> None:
            if self._rp_raised:  # a reconnect's handshake must have socket_timeout
                self._rp_restore()
            if self._rp_open and self._writer is None:
                self._rp_open = False
                if self._rp_counters is not None:
                    self._rp_counters.add("closed")

        def _close(self) -> None:
            # The synchronous close redis-py uses outside a task (and in __del__).
            super()._close()
            self._rp_closed()

        async def disconnect(self, *args: Any, **kwargs: Any) -> None:
            # redis-py drops an open connection with nowait=True (or error=...) exactly when
            # a send or read failed or timed out, or a health check failed: counting here
            # keeps the per-command path free of wrappers of ours. The arguments go on as
            # given: a connection class of the user's may not take them all.
            nowait = kwargs.get("nowait", args[0] if args else False)
            error = kwargs.get("error", args[1] if len(args) > 1 else None)
            if (nowait or error is not None) and self._rp_open and self._rp_counters:
                self._rp_counters.add("errors")
            try:
                await super().disconnect(*args, **kwargs)
            finally:
                self._rp_closed()

    Instrumented.__name__ = Instrumented.__qualname__ = base.__name__
    Instrumented.__module__ = base.__module__
    return Instrumented
