"""One connection shared by every task of an event loop, auto-pipelined.

Callers queue packed commands; one write per loop iteration sends everything queued since
the last one (``loop.call_soon`` runs the flush after every task already scheduled in this
iteration has had its turn). One reader task reads the replies in order and resolves the
callers' futures. redis-py's own ``Connection`` does the connecting (handshake, AUTH,
SELECT, client name, the retry policy), the encoding (``pack_command``) and the parsing
(its ``_parser``, RESP2 or RESP3, hiredis or not, push messages consumed in between).

The invariant that keeps replies matched: a request that was written stays in ``_pending``
until its reply has been read, whatever happened to its caller. A cancelled caller's reply
is read and dropped; a request cancelled before the write is skipped by the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool.config.keys import DEFAULT_MAX_IN_FLIGHT as DEFAULT_MAX_IN_FLIGHT
from redis_pool.multiplex.slots import InFlightLimit
from redis_pool.multiplex.stats import MultiplexStats

DEFAULT_PIPELINE_CHUNK = 128


class _Failed:
    """A reply slot filled by a connection failure (a value, so that no future ever holds
    an exception nobody retrieves: the caller may be gone)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Request:
    __slots__ = ("count", "future", "raw", "raws")

    def __init__(
        self, future: asyncio.Future[Any], count: int, raw: bool, raws: tuple[bool, ...] | None
    ) -> None:
        self.future = future
        self.count = count
        self.raw = raw  # one command: return bytes undecoded (redis-py's NEVER_DECODE)
        self.raws = raws  # a pipeline chunk: the same, per command


def _copy(error: BaseException) -> BaseException:
    """A fresh exception of the same kind for each caller (one instance raised in many
    tasks would collect all their tracebacks)."""
    try:
        fresh = type(error)(*error.args)
    except Exception:
        return error
    fresh.__cause__ = error.__cause__
    return fresh


class MultiplexedConnection:
    """The shared connection of one ``MultiplexedRedis``, bound to one event loop."""

    def __init__(self, pool: Any, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self.pool = pool
        self.limit = InFlightLimit(max_in_flight)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._packer: Any = None
        self._reset_state()
        self.connects = self.commands = self.batches = self.max_batch = 0
        self.dropped = self.failed = self.timeouts = 0

    def _reset_state(self) -> None:
        self._conn: Any = None
        self._timeout: float | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: list[tuple[_Request, list[bytes]]] = []
        self._pending: deque[_Request] = deque()
        self._flush_scheduled = False
        self._idle: asyncio.Future[None] | None = None
        self._timer: asyncio.Handle | None = None
        self._progress = 0.0

    def _make(self) -> Any:
        return self.pool.connection_class(**self.pool.connection_kwargs)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError(
                "this multiplexed client belongs to another event loop: build one per loop "
                "(aget_redis() does)"
            )
        # First use, or its loop is closed (and its connection with it): start afresh.
        self._loop = loop
        self.limit = InFlightLimit(self.limit.limit)
        self._reset_state()
        if self._packer is None:
            self._packer = self._make()  # never connected: encodes with the pool's settings
        return loop

    # -- callers -----------------------------------------------------------------------

    async def execute(self, args: Sequence[Any], raw: bool = False) -> Any:
        """Send one command and return its parsed reply (a ``ResponseError`` is returned,
        not raised, as redis-py's parsers do)."""
        loop = self._bind()
        packed = self._packer.pack_command(*args)  # bad arguments fail before queueing
        limit = self.limit
        if not limit.try_acquire(1):
            await limit.acquire(1)
        future = loop.create_future()
        self._submit(_Request(future, 1, raw, None), packed)
        response = await future
        if type(response) is _Failed:
            raise response.error
        return response

    async def execute_many(
        self, commands: Sequence[tuple[Sequence[Any], bool]], chunk: int = DEFAULT_PIPELINE_CHUNK
    ) -> list[Any]:
        """Send a pipeline's commands in chunks that queue for slots like single commands,
        so a huge pipeline interleaves with other tasks instead of owning the connection."""
        loop = self._bind()
        limit = self.limit
        chunk = max(1, min(chunk, limit.limit))
        packer = self._packer
        parts = []
        for start in range(0, len(commands), chunk):  # pack all first: nothing sent on error
            part = commands[start : start + chunk]
            raws = tuple(raw for _, raw in part)
            parts.append((packer.pack_commands([args for args, _ in part]), raws))
            if len(parts) % 8 == 0:
                await asyncio.sleep(0)  # a huge pipeline must not hold the loop while packing
        futures: list[asyncio.Future[Any]] = []
        try:
            for packed, raws in parts:
                if not limit.try_acquire(len(raws)):
                    await limit.acquire(len(raws))
                future = loop.create_future()
                self._submit(_Request(future, len(raws), False, raws), packed)
                futures.append(future)
            results: list[Any] = []
            for future in futures:
                response = await future
                if type(response) is _Failed:
                    raise response.error
                results.extend(response)
            return results
        except BaseException:
            for future in futures:
                future.cancel()  # what was written keeps its place; its replies are dropped
            raise

    def _submit(self, request: _Request, packed: list[bytes]) -> None:
        self._queue.append((request, packed))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    # -- writer ------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queue:
            return
        conn = self._conn
        if conn is not None and not self._usable(conn):
            if self._pending:
                return  # the reader is about to fail them and reschedule this flush
            self._drop(conn, RedisConnectionError("Connection closed by server."))
            conn = None
        if conn is None:
            self._start_connecting()
            return
        queue, self._queue = self._queue, []
        pending = self._pending
        was_idle = not pending
        chunks: list[bytes] = []
        written = 0
        for request, packed in queue:
            if request.future.cancelled():  # never written: nothing to keep a place for
                self.limit.release(request.count)
                continue
            chunks += packed
            pending.append(request)
            written += request.count
        if not written:
            return
        conn._writer.write(b"".join(chunks))
        self.commands += written
        self.batches += 1
        self.max_batch = max(self.max_batch, written)
        if was_idle:
            self._progress = self._loop.time()  # type: ignore[union-attr]
            idle = self._idle
            if idle is not None and not idle.done():
                idle.set_result(None)
            if self._timeout and self._timer is None:
                self._timer = self._loop.call_at(  # type: ignore[union-attr]
                    self._progress + self._timeout, self._check_stall
                )

    @staticmethod
    def _usable(conn: Any) -> bool:
        writer = conn._writer
        if writer is None or writer.transport.is_closing():
            return False
        return not conn._reader.at_eof()  # the server closed it while we were idle

    def _start_connecting(self) -> None:
        if self._connecting is None:
            assert self._loop is not None
            self._connecting = self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        conn = None
        try:
            conn = self._make()
            await conn.connect()  # redis-py's handshake, under the pool's retry policy
        except BaseException as exc:
            self._connecting = None
            if conn is not None:
                conn._close()
            if isinstance(exc, Exception):
                self._fail_queue(exc)
                return
            self._fail_queue(RedisConnectionError("Multiplexed connection closed."))
            raise
        self._connecting = None
        self._conn = conn
        self._timeout = conn.socket_timeout or None
        self.connects += 1
        assert self._loop is not None
        self._reader = self._loop.create_task(self._read_loop(conn, self._pending))
        self._flush()

    def _fail_queue(self, error: BaseException) -> None:
        queue, self._queue = self._queue, []
        for request, _ in queue:
            self.limit.release(request.count)
            if not request.future.done():
                self.failed += request.count
                request.future.set_result(_Failed(_copy(error)))

    # -- reader ------------------------------------------------------------------------

    async def _read_loop(self, conn: Any, pending: deque[_Request]) -> None:
        parser = conn._parser
        limit = self.limit
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not pending:
                    self._idle = loop.create_future()
                    await self._idle
                    continue
                request = pending[0]
                raws = request.raws
                if raws is None:
                    response = await parser.read_response(disable_decoding=request.raw)
                else:
                    response = [await parser.read_response(disable_decoding=r) for r in raws]
                pending.popleft()
                self._progress = loop.time()
                limit.release(request.count)
                future = request.future
                if future.done():
                    self.dropped += request.count
                else:
                    future.set_result(response)
        except Exception as exc:
            self._broken(conn, exc)

    def _broken(self, conn: Any, exc: Exception) -> None:
        if conn is not self._conn:
            return
        if isinstance(exc, RedisError):
            error: Exception = exc  # e.g. "Connection closed by server.", LOADING
        else:  # OSError, IncompleteReadError...
            error = RedisConnectionError(f"Error while reading from {conn._host_error()}: {exc}")
        self._drop(conn, error)

    def _check_stall(self, confirm: bool = False) -> None:
        self._timer = None
        conn = self._conn
        if conn is None or not self._pending or self._timeout is None:
            return
        assert self._loop is not None
        deadline = self._progress + self._timeout
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._check_stall)
            return
        if not confirm:
            # A loop blocked by other code makes every deadline pass at once, with the
            # replies already received: the reader, woken in this iteration, runs before
            # a callback scheduled now, so look again after it.
            self._timer = self._loop.call_soon(self._check_stall, True)
            return
        self.timeouts += 1
        self._drop(conn, RedisTimeoutError(f"Timeout reading from {conn._host_error()}"))

    def _drop(self, conn: Any, error: BaseException) -> None:
        """Close ``conn`` and fail everything written to it; queued commands reconnect."""
        self._conn = None
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._idle = None
        with contextlib.suppress(Exception):
            conn._parser.on_disconnect()
        conn._close()
        pending, self._pending = self._pending, deque()
        for request in pending:
            self.limit.release(request.count)
            if not request.future.done():
                self.failed += request.count
                request.future.set_result(_Failed(_copy(error)))
        if self._queue and not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    # -- lifecycle and stats -----------------------------------------------------------

    async def aclose(self) -> None:
        """Close the shared connection; commands still queued or in flight fail. A later
        command opens it again."""
        if self._loop is None or self._loop.is_closed():
            return
        connecting, reader = self._connecting, self._reader
        if connecting is not None:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        closed = RedisConnectionError("Multiplexed connection closed.")
        self._fail_queue(closed)
        conn = self._conn
        if conn is not None:
            writer = conn._writer
            self._drop(conn, closed)
            if writer is not None:
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def connection(self) -> Any:
        """The redis-py connection in use now, or None (for a fork handler that must close
        the child's copy of its socket)."""
        return self._conn

    def stats(self) -> MultiplexStats:
        """A snapshot of the counters; no I/O, no lock."""
        pool = self.pool
        kwargs = pool.connection_kwargs
        address = getattr(pool, "address", None)
        if address is None and "host" in kwargs:
            address = f"{kwargs['host']}:{kwargs.get('port', 6379)}"
        return MultiplexStats(
            alias=getattr(pool, "alias", None),
            pid=os.getpid(),
            address=address,
            connections=int(self._conn is not None),
            connects=self.connects,
            in_flight=sum(request.count for request in self._pending),
            queued=sum(request.count for request, _ in self._queue),
            waiting=self.limit.waiting,
            max_in_flight=self.limit.limit,
            commands=self.commands,
            batches=self.batches,
            max_batch=self.max_batch,
            dropped_replies=self.dropped,
            failed=self.failed,
            timeouts=self.timeouts,
            dedicated_in_use=len(getattr(pool, "_in_use_connections", ())),
            dedicated_max=getattr(pool, "max_connections", None),
        )
