"""django-health-check (4.x) checks that probe Redis through an alias's own pool.

django-health-check's own Redis check builds a client for every probe: periodic probes then
open a connection each (codingjoe/django-health-check #433), and an asyncio client can end
up bound to the wrong event loop (#643). These checks borrow a connection from the pool
``get_redis(alias)`` / ``aget_redis(alias)`` already keep, so a probe opens nothing, and
they read the pool's own counters to tell a busy pool from a broken one:

- healthy: PING answered within ``timeout``;
- degraded (``ServiceWarning``): ``saturation`` of ``max_connections`` or more in use, or
  checkouts refused (wait timeouts, or a plain pool's immediate refusals) since this
  process's previous probe of the alias;
- unavailable (``ServiceUnavailable``): Redis down, slow past ``timeout``, or the pool
  exhausted (every connection in use: the probe does not queue behind real requests).

Messages name the alias and numbers only, never an address with credentials or a server's
error text.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    from health_check.base import HealthCheck  # type: ignore[import-untyped]
    from health_check.exceptions import (  # type: ignore[import-untyped]
        ServiceUnavailable,
        ServiceWarning,
    )
except ImportError as exc:
    raise ImportError(
        "redis_pool.contrib.health_check needs django-health-check 4.x: "
        "pip install 'django-redis-pool[health-check]'"
    ) from exc

from redis_pool import AliasNotFound, PoolExhaustedError, PoolStats, aget_redis, get_redis
from redis_pool import pool_stats as _sync_pool_stats

__all__ = ["AsyncRedisPool", "RedisPool"]

_lock = threading.Lock()
# alias -> ((pid, counters' start), refused checkouts) seen by the previous probe. Checks
# are built afresh for every request, so what "since the last probe" means lives here; new
# counters (a fork, a settings change) start from zero.
_refused_seen: dict[str, tuple[tuple[int, float], int]] = {}


@dataclasses.dataclass
class RedisPool(HealthCheck):  # type: ignore[misc]  # django-health-check ships no types
    """PING through ``get_redis(alias)``'s pool and judge the pool's own state.

    Args:
        alias: The ``REDIS_POOL`` alias to probe.
        saturation: Fraction of ``max_connections`` in use from which the check warns.
        timeout: PING slower than this is unavailable (django-health-check also gives up
            on the whole check one second later).

    """

    alias: str = "default"
    saturation: float = dataclasses.field(default=0.8, repr=False)
    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=2), repr=False
    )
    _refused_before: int = dataclasses.field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.saturation <= 1.0:
            raise ValueError(
                f"saturation must be a fraction of max_connections in (0, 1], "
                f"not {self.saturation!r}"
            )

    def run(self) -> None:
        stats = self._stats(lambda: _sync_pool_stats(self.alias))
        self._refuse_if_exhausted(stats)
        with self._configured():
            client = get_redis(self.alias)
        start = time.perf_counter()
        try:
            self._ping(client)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        self._judge(stats, time.perf_counter() - start)

    def _ping(self, client: Any) -> None:
        """PING on a connection of the alias's pool, waiting at most ``timeout`` (or the
        alias's ``socket_timeout``, if shorter) for the answer.

        A thread cannot be cancelled: ``client.ping()`` would hold django-health-check's
        worker thread, and so the response, for the whole ``socket_timeout`` (5 s by
        default) even after the check has timed out.
        """
        pool = getattr(client, "connection_pool", None)
        if pool is None:  # a Cluster alias: a pool per node, the client picks
            client.ping()
            return
        connection = pool.get_connection()
        try:
            socket_timeout = getattr(connection, "socket_timeout", None)
            bound = self.timeout.total_seconds()
            if socket_timeout:
                bound = min(bound, socket_timeout)
            try:
                connection.send_command("PING")
            except RedisConnectionError:
                # Dropped by the server while idle: retried once, as redis-py's client does.
                connection.disconnect()
                connection.send_command("PING")
            if not connection.can_read(timeout=bound):
                # Its late answer must not reach the next borrower.
                connection.disconnect()
                raise RedisTimeoutError(f"no PING answer within {bound * 1000:.0f} ms")
            connection.read_response()
        finally:
            pool.release(connection)

    # -- shared by the sync and async checks --------------------------------------------
    @contextlib.contextmanager
    def _configured(self) -> Iterator[None]:
        try:
            yield
        except AliasNotFound as exc:
            raise ServiceUnavailable(str(exc)) from exc
        except ImproperlyConfigured as exc:
            raise ServiceUnavailable(
                f"REDIS_POOL alias {self.alias!r} is misconfigured: run 'manage.py check'."
            ) from exc

    def _stats(self, read: Callable[[], PoolStats | None]) -> PoolStats | None:
        with self._configured():
            stats = read()
        if stats is not None:
            counters = (stats.pid, stats.since)
            with _lock:
                seen, before = _refused_seen.get(self.alias, (counters, 0))
                self._refused_before = before if seen == counters else 0
                _refused_seen[self.alias] = (counters, stats.exhausted)
        return stats

    def _refuse_if_exhausted(self, stats: PoolStats | None) -> None:
        # A full pool: a request now fails (plain pool) or queues (blocking pool). The probe
        # says so without taking a place in that queue.
        if stats is not None and stats.in_use >= stats.max_connections > 0:
            raise ServiceUnavailable(
                f"Redis pool {self.alias!r} is exhausted: all {stats.max_connections} "
                f"connections in use, {stats.waiting} waiting."
            )

    def _unavailable(self, exc: BaseException) -> Any:
        if isinstance(exc, PoolExhaustedError):
            return ServiceUnavailable(str(exc))  # our own message: alias and limit only
        if isinstance(exc, RedisTimeoutError) and str(exc).startswith("no PING answer"):
            return ServiceUnavailable(f"Redis alias {self.alias!r}: {exc}.")  # ours
        # The class name only: a server's error text or an address may carry a user name.
        return ServiceUnavailable(f"Redis alias {self.alias!r}: {type(exc).__name__}.")

    def _judge(self, stats: PoolStats | None, elapsed: float) -> None:
        bound = self.timeout.total_seconds()
        if elapsed > bound:
            raise ServiceUnavailable(
                f"Redis alias {self.alias!r}: PING took {elapsed * 1000:.0f} ms, "
                f"over the {bound * 1000:.0f} ms bound."
            )
        if stats is None:
            return
        limit = stats.max_connections
        if limit > 0 and stats.in_use >= self.saturation * limit:
            raise ServiceWarning(
                f"Redis pool {self.alias!r} is near saturation: {stats.in_use} of "
                f"{limit} connections in use, {stats.waiting} waiting."
            )
        refused = stats.exhausted - self._refused_before
        if refused > 0:
            raise ServiceWarning(
                f"Redis pool {self.alias!r} refused {refused} checkout(s) since the last "
                f"probe ({stats.wait_timeouts} wait timeouts in all)."
            )


@dataclasses.dataclass
class AsyncRedisPool(RedisPool):
    """``RedisPool`` for ASGI: PING through ``aget_redis(alias)``, the running loop's pool.

    Under WSGI, Django runs each async view on a new event loop, so this check would open
    (and close) a connection per probe: use ``RedisPool`` there. A Cluster alias has no
    single async pool to read: only its PING is judged.
    """

    async def run(self) -> None:  # type: ignore[override]
        with self._configured():
            client = aget_redis(self.alias)
        read = getattr(getattr(client, "connection_pool", None), "stats", None)
        stats = self._stats(read if read is not None else lambda: None)
        self._refuse_if_exhausted(stats)
        bound = self.timeout.total_seconds()
        start = time.perf_counter()
        try:
            # Cancelling the PING makes redis-py drop that connection, so a late answer is
            # never read by the next borrower.
            await asyncio.wait_for(client.ping(), bound)
        except asyncio.TimeoutError as exc:
            raise ServiceUnavailable(
                f"Redis alias {self.alias!r}: no PING answer within {bound * 1000:.0f} ms."
            ) from exc
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        self._judge(stats, time.perf_counter() - start)
