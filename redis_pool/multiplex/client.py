"""``MultiplexedRedis``: a ``redis.asyncio.Redis`` whose commands share one connection.

Ordinary commands and non-transactional pipelines go through the loop's one auto-pipelined
connection; what cannot share it (``routing``) runs on a connection of the bounded pool the
client was given, exactly as a plain ``redis.asyncio.Redis`` on that pool would run it.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import redis.asyncio
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from redis_pool.multiplex.connection import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PIPELINE_CHUNK,
    MultiplexedConnection,
)
from redis_pool.multiplex.routing import route
from redis_pool.multiplex.stats import MultiplexStats

# redis-py's option keys (redis.client.NEVER_DECODE / EMPTY_RESPONSE), spelled out
# because redis.asyncio does not re-export them.
NEVER_DECODE = "NEVER_DECODE"
EMPTY_RESPONSE = "EMPTY_RESPONSE"


class MultiplexedRedis(redis.asyncio.Redis):
    """A ``redis.asyncio.Redis`` multiplexing its commands over one connection per loop.

    ``pool`` is the alias's bounded ``redis.asyncio`` pool: the shared connection is built
    from its connection class and keyword arguments (it is not one of the pool's
    connections), and the commands that cannot share a connection borrow one of its
    connections. At most ``max_in_flight`` commands are written and unanswered at a time;
    callers beyond wait in arrival order. Non-transactional pipelines are sent in chunks of
    ``pipeline_chunk`` commands, each queueing like a caller, so that one huge pipeline
    interleaves with other tasks' commands. Use it on one event loop.
    """

    def __init__(
        self,
        pool: redis.asyncio.ConnectionPool,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        pipeline_chunk: int = DEFAULT_PIPELINE_CHUNK,
    ) -> None:
        super().__init__(connection_pool=pool)
        self.multiplexed = MultiplexedConnection(pool, max_in_flight=max_in_flight)
        self.pipeline_chunk = pipeline_chunk

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}({self.connection_pool!r})>"

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        where = route(args)
        if where != "shared":
            return await self._run_dedicated(where, args, options)
        response = await self.multiplexed.execute(args, NEVER_DECODE in options)
        return await self._parse(args[0], response, options)

    async def _parse(self, command_name: Any, response: Any, options: dict[str, Any]) -> Any:
        # redis.asyncio.Redis.parse_response, after the read.
        if isinstance(response, ResponseError):
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise response
        options.pop(NEVER_DECODE, None)
        options.pop(EMPTY_RESPONSE, None)
        options.pop("keys", None)
        callback = self.response_callbacks.get(command_name)
        if callback is None:
            return response
        value = callback(response, **options)
        return await value if inspect.isawaitable(value) else value

    async def _run_dedicated(self, where: str, args: Any, options: dict[str, Any]) -> Any:
        if where == "dedicated":
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        # Connection state (SELECT, CLIENT SETNAME...): the connection is closed after the
        # command, so the change can never reach an unrelated later borrower.
        pool = self.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_command(*args)
            return await self.parse_response(conn, args[0], **options)
        finally:
            await conn.disconnect()
            await pool.release(conn)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        """``transaction=True`` (MULTI/EXEC): a pipeline on a dedicated connection, as
        redis.asyncio's; ``transaction=False``: sent over the shared connection."""
        if transaction:
            return Pipeline(self.connection_pool, self.response_callbacks, True, shard_hint)
        return MultiplexedPipeline(self, shard_hint)

    def client(self) -> redis.asyncio.Redis:
        """A single-connection client on a dedicated connection (a session of your own)."""
        return redis.asyncio.Redis(
            connection_pool=self.connection_pool, single_connection_client=True
        )

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self.multiplexed.aclose()
        await super().aclose(close_connection_pool)

    def stats(self) -> MultiplexStats:
        """The shared connection's counters and the dedicated connections lent out."""
        return self.multiplexed.stats()


class MultiplexedPipeline(Pipeline):
    """A non-transactional pipeline sent over the shared connection, in chunks.

    WATCH or MULTI make it a transaction: from then on it is redis.asyncio's pipeline on a
    dedicated connection, as are pipelines holding a command that cannot share.
    """

    def __init__(self, client: MultiplexedRedis, shard_hint: str | None) -> None:
        super().__init__(client.connection_pool, client.response_callbacks, False, shard_hint)
        self._mux_client = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if (
            not stack
            or self.watching
            or self.explicit_transaction
            or self.is_transaction
            or any(route(args) != "shared" for args, _ in stack)
        ):
            return await super().execute(raise_on_error)
        client = self._mux_client
        try:
            if self.scripts:
                await self._load_scripts_shared()
            replies = await client.multiplexed.execute_many(
                [(args, NEVER_DECODE in options) for args, options in stack],
                client.pipeline_chunk,
            )
            response: list[Any] = []
            for (args, options), reply in zip(stack, replies, strict=True):
                if len(response) % 1024 == 1023:
                    await asyncio.sleep(0)  # let other tasks run during a huge pipeline
                if isinstance(reply, ResponseError) and EMPTY_RESPONSE not in options:
                    response.append(reply)  # kept in place, as redis-py's pipeline does
                    continue
                response.append(await client._parse(args[0], reply, dict(options)))
            if raise_on_error:
                self.raise_first_error(stack, response)
            return response
        finally:
            await self.reset()  # type: ignore[no-untyped-call]

    async def _load_scripts_shared(self) -> None:
        # redis-py's load_scripts() runs them on a pooled connection; same commands here.
        scripts = list(self.scripts)
        client = self._mux_client
        exists = await client.execute_command("SCRIPT EXISTS", *[s.sha for s in scripts])
        for script, exist in zip(scripts, exists, strict=True):
            if not exist:
                script.sha = await client.execute_command("SCRIPT LOAD", script.script)
