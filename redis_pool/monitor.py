"""The per-process monitor: publishes this process's pool stats to Redis, reports leaks.

One daemon thread per process, started by the first connection a pool makes (so a process
that never talks to Redis, such as ``migrate``, never starts it) and again in a forked
child (threads do not survive ``fork``; the child's first connection starts its own). The
request path never waits for it and never sees its errors.

Every ``publish_interval`` seconds, for each alias this process has connected with, it
writes its snapshot with one pipelined round trip over a dedicated connection of its own,
named ``redis_pool_stats:<project>:<alias>:<host>:<pid>`` (so it never takes a connection
from the user's pool and the server's CLIENT LIST can tell it apart):

- ``redis_pool:stats:<alias>:<host>:<pid>``: the JSON snapshot, ``PX`` = ttl, so a process
  that dies disappears within ttl seconds;
- ``redis_pool:stats:<alias>``: a sorted set indexing those keys, so that readers need no
  SCAN; trimmed by the publishers and expiring by itself when nothing publishes.

Redis down: the publish fails, ``publish_errors`` counts it, the next interval tries again
on a new connection. Redis refusing the keys (an ACL without ``redis_pool:stats:*``): the
connection is healthy and kept, a warning says so once, and attempts back off
exponentially up to ``REFUSED_BACKOFF_CAP`` seconds.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import ConnectionPool
from redis.exceptions import NoPermissionError, ReadOnlyError, ResponseError
from redis.retry import Retry

from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import default_client_name, hostname
from redis_pool.config.keys import STANDALONE
from redis_pool.leaks import scan
from redis_pool.stats import PoolStats

logger = logging.getLogger("redis_pool.stats")

SCHEMA = 1
KEY_PREFIX = "redis_pool:stats:"
STATS_CLIENT_PREFIX = "redis_pool_stats:"
# The publisher's own connection gives up fast: it runs beside the app, not for it.
STATS_SOCKET_TIMEOUT = 1.0
# Index members whose key expired this long ago (by the publisher's clock) are dropped;
# generous, so that clock skew between hosts never drops a live process.
INDEX_GRACE_MS = 60_000
# A refused publish (NOPERM...) is retried after interval * 2**n seconds, at most this long.
REFUSED_BACKOFF_CAP = 60.0


def ttl_seconds(interval: float) -> float:
    """How long a snapshot outlives its process: two missed publishes, plus a second."""
    return 2 * interval + 1


def wanted(config: PoolConfig) -> bool:
    """Does this alias need the monitor thread (publishing, or leak detection)?"""
    return config.publish_stats or config.leak_detection_threshold is not None


def publishable(config: PoolConfig) -> bool:
    # Sentinel and Cluster aliases have no single server address in their kwargs; the
    # fleet view covers standalone servers (README: Pool statistics).
    return config.publish_stats and config.topology == STANDALONE


def index_key(alias: str) -> str:
    return f"{KEY_PREFIX}{alias}"


def process_key(alias: str, host: str, pid: int) -> str:
    return f"{KEY_PREFIX}{alias}:{host}:{pid}"


def stats_client_name(alias: str) -> str:
    return STATS_CLIENT_PREFIX + default_client_name(alias).removeprefix("redis_pool:")


def stats_client(config: PoolConfig, name: str) -> redis.Redis:
    """A one-connection client to ``config``'s server, for stats traffic only.

    Same address, database, credentials and TLS settings as the alias's pool; short
    timeouts and no retries, so a down or slow server costs at most a second or two.
    """
    kwargs = dict(config.kwargs)
    kwargs["client_name"] = name
    for key in ("socket_timeout", "socket_connect_timeout"):
        configured = kwargs.get(key)
        kwargs[key] = min(configured or STATS_SOCKET_TIMEOUT, STATS_SOCKET_TIMEOUT)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    kwargs.pop("max_connections", None)
    pool = ConnectionPool(max_connections=1, **kwargs)
    return redis.Redis(connection_pool=pool)


def snapshot(alias: str, config: PoolConfig, stats: PoolStats, extra: list[PoolStats]) -> str:
    """The JSON published for one alias of this process. Holds no secret: the address is
    the masked one, and nothing from the settings but the numbers shown."""
    data = stats.as_dict()
    interval = config.publish_interval
    data.update(
        schema=SCHEMA,
        project=default_client_name(alias).split(":")[1],
        program=os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "",
        published_at=round(time.time(), 3),
        interval=interval,
        ttl=ttl_seconds(interval),
        async_pools=[s.as_dict() for s in extra],
    )
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


@dataclass
class _Publisher:
    """One alias's publishing state in this process."""

    alias: str
    config: PoolConfig
    client: redis.Redis
    key: str
    member: str
    next_due: float = 0.0
    failing: bool = False
    refusals: int = 0  # consecutive publishes the server refused (a healthy connection)
    warned: bool = False

    def publish(self, payload: str, ttl: float) -> None:
        now_ms = int(time.time() * 1000)
        ttl_ms = int(ttl * 1000)
        index = index_key(self.alias)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.key, payload, px=ttl_ms)
        pipe.zadd(index, {self.member: now_ms + ttl_ms})
        pipe.zremrangebyscore(index, "-inf", now_ms - INDEX_GRACE_MS)
        pipe.pexpire(index, ttl_ms + INDEX_GRACE_MS)
        pipe.execute()

    def unpublish(self) -> None:
        """Remove our key at a clean exit, over the connection we already have (never a
        new connect at exit): otherwise the key simply expires."""
        connections = self.client.connection_pool._available_connections
        if not any(_is_connected(c) for c in connections):
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.key)
        pipe.zrem(index_key(self.alias), self.member)
        pipe.execute()

    def close(self) -> None:
        self.client.connection_pool.disconnect()


class _Monitor:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()  # start/stop
        self.work = threading.Lock()  # one tick at a time (thread, publish_now, stop)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.publishers: dict[str, _Publisher] = {}

    def start(self) -> None:
        with self.lock:
            if self.thread is not None:
                return
            self.stopping.clear()
            thread = threading.Thread(target=self.run, name="redis_pool-monitor", daemon=True)
            thread.start()
            self.thread = thread

    def run(self) -> None:
        while True:
            try:
                delay = self.tick()
            except Exception:  # never let the thread die; it is the process's only one
                logger.debug("redis_pool monitor tick failed", exc_info=True)
                delay = 1.0
            if self.stopping.wait(delay):
                return

    def tick(self, force: bool = False) -> float:
        """Publish what is due and scan for leaks; returns the delay to the next tick."""
        from redis_pool import registry

        delay = 1.0
        with self.work:
            if os.getpid() != self.pid:  # a stale object in a child: do nothing
                return delay
            if not getattr(registry, "_loaded", True):
                # Pools closed (close_all) or not built yet: nothing to publish, and not
                # for this thread to build them.
                return delay
            current: set[str] = set()
            for alias in registry.aliases():
                try:
                    config = registry.get_config(alias)
                    pool = registry.get_pool(alias)
                except Exception:  # removed or broken meanwhile
                    continue
                current.add(alias)
                counters = pool.counters
                if counters.capture_stacks and counters.pid == self.pid:
                    scan(alias, counters, pool.in_use_connections())
                    delay = min(delay, max(0.05, counters.leak_limit / 4))
                if publishable(config):
                    self._publish(alias, config, pool, force)
                    delay = min(delay, max(0.05, config.publish_interval / 2))
                else:
                    self._drop(alias)
            for alias in [a for a in self.publishers if a not in current]:
                self._drop(alias)
        return delay

    def _publish(self, alias: str, config: PoolConfig, pool: Any, force: bool) -> None:
        publisher = self.publishers.get(alias)
        if publisher is not None and publisher.config is not config:
            self._drop(alias)  # settings changed: the alias may point elsewhere now
            publisher = None
        now = time.monotonic()
        if publisher is not None and now < publisher.next_due and not force:
            return
        stats = pool.stats()
        extra = _async_stats(alias)
        if stats.created == 0 and not any(s.created for s in extra):
            return  # this process has not talked to this alias's Redis: nothing to show
        if publisher is None:
            host = hostname()
            publisher = _Publisher(
                alias=alias,
                config=config,
                client=stats_client(config, stats_client_name(alias)),
                key=process_key(alias, host, self.pid),
                member=f"{host}:{self.pid}",
            )
            self.publishers[alias] = publisher
        interval = config.publish_interval
        publisher.next_due = now + interval
        try:
            publisher.publish(snapshot(alias, config, stats, extra), ttl_seconds(interval))
        except ResponseError as exc:
            pool.counters.add("publish_errors")
            if isinstance(exc, ReadOnlyError):
                # A demoted master: a new connection may reach the new one (DNS failover).
                publisher.client.connection_pool.disconnect()
            # Otherwise (NOPERM, OOM...) the server answered: the connection is fine, keep it.
            self._refused(publisher, exc, now, interval)
        except Exception as exc:  # Redis down or slow: count it, retry next time afresh
            pool.counters.add("publish_errors")
            publisher.client.connection_pool.disconnect()
            if not publisher.failing:
                logger.debug(
                    "redis_pool: publishing stats of alias %r failed (%s); will retry.",
                    alias,
                    type(exc).__name__,
                )
            publisher.failing = True
        else:
            pool.counters.add("publishes")
            publisher.failing = False
            publisher.refusals = 0

    @staticmethod
    def _refused(publisher: _Publisher, exc: ResponseError, now: float, interval: float) -> None:
        # Reconnecting would not help (the same user is refused again) and costs the server
        # a connection per interval: back off instead, and tell the operator once.
        publisher.refusals += 1
        delay = min(interval * 2 ** min(publisher.refusals, 32), max(REFUSED_BACKOFF_CAP, interval))
        publisher.next_due = now + delay
        if not publisher.warned:
            publisher.warned = True
            advice = (
                "Grant the alias's user the keys redis_pool:stats:*, or set 'publish_stats': False."
                if isinstance(exc, NoPermissionError)
                else "Set 'publish_stats': False to stop publishing to this server."
            )
            # Redis's own text names the refusal, never a credential.
            logger.warning(
                "redis_pool: Redis refused the stats of alias %r (%s: %s); retrying with "
                "back-off up to %ss. %s",
                publisher.alias,
                type(exc).__name__,
                exc,
                REFUSED_BACKOFF_CAP,
                advice,
            )

    def _drop(self, alias: str) -> None:
        publisher = self.publishers.pop(alias, None)
        if publisher is not None:
            _quietly(publisher.unpublish)
            _quietly(publisher.close)

    def stop(self, timeout: float = 2.0) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
        self.stopping.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if os.getpid() != self.pid:
            return
        with self.work:
            for alias in list(self.publishers):
                self._drop(alias)


def _is_connected(connection: Any) -> bool:
    # The sync Connection.is_connected property is new in redis-py 8; on 7.x the socket
    # attribute it reads is what tells.
    try:
        return bool(connection.is_connected)
    except AttributeError:
        return connection._sock is not None


def _quietly(func: Any) -> None:
    try:
        func()
    except Exception:
        logger.debug("redis_pool: stats cleanup failed", exc_info=True)


def _async_stats(alias: str) -> list[PoolStats]:
    try:
        from redis_pool.aio import async_pool_stats
    except ImportError:  # pragma: no cover - the async side is optional
        return []
    try:
        return async_pool_stats(alias)
    except Exception:
        return []


_monitor = _Monitor()
_atexit_registered = False


def ensure_running() -> None:
    """Start this process's monitor thread unless it runs. Cheap when it does."""
    monitor = _monitor
    if monitor.thread is not None and monitor.pid == os.getpid():
        return
    monitor.start()
    _stop_at_exit()


def _stop_at_exit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(stop)


def running() -> bool:
    return _monitor.thread is not None and _monitor.thread.is_alive()


def publish_now() -> None:
    """Publish every alias's snapshot now, in the caller's thread (tests, shutdown hooks)."""
    _stop_at_exit()
    _monitor.tick(force=True)


def stop() -> None:
    """Stop the thread, delete this process's snapshots, close the stats connections."""
    _monitor.stop()


def _after_fork_in_child() -> None:
    # The parent's thread does not exist here and its locks may be held by it: start
    # afresh. The inherited stats connections are dropped, not shut down (redis-py closes
    # only the child's descriptor when it finalises a connection of another pid).
    global _monitor
    _monitor = _Monitor()


os.register_at_fork(after_in_child=_after_fork_in_child)
