"""Sentinel and Cluster aliases: their clients and pools, built from a ``PoolConfig``.

The pools are our instrumented pools (``pools.py``) composed with redis-py's, so
``max_connections``, ``pool_timeout``, the timeouts and the statistics apply the same way
to a Sentinel master, its replicas and every Cluster node.

- Sentinel: one pool for the master and one for the replicas, each with its own
  ``max_connections``. redis-py's ``SentinelConnectionPool`` asks the sentinels for the
  master on every new connection and drops connections to a master that was demoted, so a
  failover needs no restart. Building them touches no network.
- Cluster: redis-py's ``RedisCluster`` queries the cluster in its constructor, so the
  client is built on first use (``client()``), not at start-up; each node gets one of our
  pools, so ``max_connections`` and the timeouts apply per node.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import MISSING, dataclass, fields, replace
from time import monotonic
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import CLUSTER, SENTINEL, SSL
from redis_pool.config.secrets import node_address, redact
from redis_pool.exceptions import ClusterUnavailableError
from redis_pool.pools import BlockingRedisPool, RedisPool
from redis_pool.stats import PoolStats, Timing

AnyPool = RedisPool | BlockingRedisPool


# -- Sentinel ---------------------------------------------------------------------------


# How often a master pool asks the sentinels who the master is, and how long it waits
# after the sentinels could not be asked. See _SentinelPoolMixin.get_connection.
MASTER_CHECK_INTERVAL = 1.0
MASTER_CHECK_BACKOFF = 30.0


class _SentinelPoolMixin:
    """What our pools add to redis-py's ``SentinelConnectionPool``: a master check.

    redis-py asks the sentinels for the master only when it opens a connection. Pooled
    connections to a demoted master keep working until Sentinel turns that server into a
    replica, about 8 s after the switch (SENTINEL_PUBLISH_PERIOD * 4 in sentinel.c); the
    writes they take meanwhile are lost at the resync (measured: all of them, see
    the README's Sentinel section). So a master pool asks at most once per
    MASTER_CHECK_INTERVAL, on
    a checkout, and redis-py drops the connections to the old address when it changed.
    """

    proxy: Any
    is_master: bool
    _rp_next_check = 0.0
    _rp_checking: threading.Lock | None = None

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        # redis-py's BlockingConnectionPool.reset() does not call super(), so the
        # Sentinel pool's own reset (forget the cached master) would be skipped.
        proxy = getattr(self, "proxy", None)
        if proxy is not None:
            proxy.reset()
        self._rp_checking = threading.Lock()
        self._rp_next_check = 0.0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_master and monotonic() >= self._rp_next_check:
            self._rp_check_master()
        return super().get_connection(*args, **kwargs)  # type: ignore[misc]

    def _rp_check_master(self) -> None:
        checking = self._rp_checking
        # One thread asks; the others go on with the connections they have.
        if checking is None or not checking.acquire(blocking=False):
            return
        try:
            self._rp_next_check = monotonic() + MASTER_CHECK_INTERVAL
            # Disconnects the idle connections if the address changed; in-use ones are
            # dropped when they come back (SentinelConnectionPool.owns_connection).
            self.proxy.get_master_address()
        except (RedisConnectionError, RedisTimeoutError):
            # No sentinel answered: keep the connections we have (the master may be
            # fine), and do not make a request pay for asking again too soon.
            self._rp_next_check = monotonic() + MASTER_CHECK_BACKOFF
        finally:
            checking.release()


class SentinelRedisPool(_SentinelPoolMixin, RedisPool, SentinelConnectionPool):
    """Plain pool whose connections go to the master (or a replica) the sentinels name."""


class SentinelBlockingRedisPool(_SentinelPoolMixin, BlockingRedisPool, SentinelConnectionPool):
    """Blocking pool whose connections go to the master (or a replica) the sentinels name."""


def _sentinel_pool(config: PoolConfig, manager: Sentinel, *, master: bool) -> AnyPool:
    kwargs = dict(config.kwargs)
    ssl = config.transport == SSL
    kwargs["connection_class"] = SentinelManagedSSLConnection if ssl else SentinelManagedConnection
    # Keywords that reach redis-py's SentinelConnectionPool.__init__ through our pools'.
    kwargs.update(
        service_name=config.discovery.service_name, sentinel_manager=manager, is_master=master
    )
    address = config.address if master else f"{config.address} replicas"
    pool_config = replace(config, kwargs=kwargs, address=address)
    if config.pool_timeout is None:
        return SentinelRedisPool(pool_config)
    return SentinelBlockingRedisPool(pool_config)


class SentinelTopology:
    """A Sentinel alias: the master's client and pool, the replicas', and the sentinels."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(config.discovery.sentinels), sentinel_kwargs=dict(config.discovery.sentinel_kwargs)
        )
        self.pool: AnyPool = _sentinel_pool(config, self.sentinel, master=True)
        self.replica_pool = _sentinel_pool(config, self.sentinel, master=False)
        self._master = redis.Redis(connection_pool=self.pool)
        self._replica = redis.Redis(connection_pool=self.replica_pool)

    def client(self) -> redis.Redis:
        return self._master

    def peek(self) -> redis.Redis:
        return self._master

    def replica(self) -> redis.Redis:
        """Reads from a replica, round robin; the master when no replica is up."""
        return self._replica

    def pools(self) -> list[AnyPool]:
        return [self.pool, self.replica_pool]

    def close(self) -> None:
        for pool in self.pools():
            pool.disconnect()
        close_sentinels(self.sentinel)


def close_sentinels(manager: Sentinel) -> None:
    """Close the sentinel clients of ``manager`` and their pools.

    ``Sentinel.close()`` is new in redis-py 8; on 7.x we close its clients ourselves, the
    same way: each one, then re-raise the first error.
    """
    close = getattr(manager, "close", None)
    if close is not None:
        close()
        return
    first: Exception | None = None
    for client in manager.sentinels:
        try:
            client.close()
        except Exception as error:  # re-raised below, after the others are closed
            first = first or error
    if first is not None:
        raise first


# -- Cluster ----------------------------------------------------------------------------


def _node_pool_class(topology: ClusterTopology) -> type[AnyPool]:
    """Our pool class for the nodes of one Cluster alias.

    redis-py builds a node's pool as ``connection_pool_class(**kwargs)`` with the
    cluster's keywords (host, port, its no-retry Retry, its on-connect hook, ...); we lay
    them over the alias's own, so what ``RedisCluster`` drops (``health_check_interval``,
    for one) still applies, and take ``max_connections`` and ``pool_timeout`` from the
    alias: per node.
    """
    config = topology.config
    base: type[AnyPool] = RedisPool if config.pool_timeout is None else BlockingRedisPool

    def __init__(self: AnyPool, **kwargs: Any) -> None:
        for key in ("max_connections", "timeout", "queue_class", "connection_class"):
            kwargs.pop(key, None)
        address = node_address(config.kwargs, config.transport, kwargs["host"], kwargs["port"])
        node_config = replace(config, kwargs={**config.kwargs, **kwargs}, address=address)
        base.__init__(self, node_config)  # type: ignore[arg-type]
        topology.created.add(self)

    name = f"Cluster{base.__name__}"
    return type(name, (base,), {"__init__": __init__, "__module__": __name__})


@dataclass
class _Attempt:
    number: int = 0
    failure: str | None = None


class ClusterTopology:
    """A Cluster alias: the ``RedisCluster`` client, built on first use, and its node pools."""

    pool: AnyPool | None = None  # no single pool: one per node

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.created: weakref.WeakSet[AnyPool] = weakref.WeakSet()
        self._pool_class = _node_pool_class(self)
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        self._attempt = _Attempt()
        self._closed = False

    def client(self) -> RedisCluster:
        """The cluster client; the first call asks the startup nodes for the cluster's
        layout. Callers that waited for a failed attempt get its error instead of starting
        another one each: an unreachable cluster costs each of them one attempt at most."""
        client = self._client
        if client is not None:
            return client
        seen = self._attempt.number
        with self._lock:
            if self._client is not None:
                return self._client
            if self._closed:
                raise RuntimeError(f"the cluster client of alias {self.config.alias!r} is closed")
            attempt = self._attempt
            if attempt.number != seen and attempt.failure is not None:
                raise ClusterUnavailableError(
                    self.config.alias, self.config.address, attempt.failure
                )
            attempt.number += 1
            try:
                self._client = self._build()
            except (RedisError, OSError) as exc:
                attempt.failure = redact(f"{type(exc).__name__}: {exc}", self.config.kwargs)
                self._close_pools()
                raise ClusterUnavailableError(
                    self.config.alias, self.config.address, attempt.failure
                ) from None
            attempt.failure = None
            return self._client

    def peek(self) -> RedisCluster | None:
        """The client if it is built; never touches the network."""
        return self._client

    def _build(self) -> RedisCluster:
        config = self.config
        (host, port), *others = config.discovery.startup_nodes
        kwargs = {
            k: v
            for k, v in config.kwargs.items()
            if k not in ("retry", "connection_class", "max_connections")
        }
        if ":" in host:
            host = f"[{host}]"
        try:
            return RedisCluster(
                # A URL only so that redis-py builds the node pools with
                # connection_pool_class; the transport comes from our connection class.
                url=f"redis://{host}:{port}",
                startup_nodes=[ClusterNode(h, p) for h, p in others],  # type: ignore[no-untyped-call]
                # RedisCluster retries whole commands (re-reading the layout in between);
                # the node pools get redis-py's no-retry policy.
                retry=config.kwargs.get("retry"),
                connection_pool_class=self._pool_class,
                **kwargs,
            )
        except RedisClusterException as exc:
            raise RedisConnectionError(str(exc)) from exc

    def replica(self) -> RedisCluster:
        return self.client()

    def pools(self) -> list[AnyPool]:
        """The pools of the nodes the cluster has now (none before the first use)."""
        client = self._client
        if client is None:
            return []
        found: list[AnyPool] = []
        for node in client.get_nodes():  # type: ignore[no-untyped-call]
            connection = node.redis_connection
            if connection is not None and isinstance(connection.connection_pool, self._pool_class):
                found.append(connection.connection_pool)
        return sorted(found, key=lambda pool: pool.address)

    def _close_pools(self) -> None:
        for pool in list(self.created):
            pool.disconnect()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self._close_pools()


Topology = SentinelTopology | ClusterTopology


def build(config: PoolConfig) -> Topology:
    """The clients and pools of a Sentinel or Cluster alias. Constructs objects only."""
    if config.topology == SENTINEL:
        return SentinelTopology(config)
    if config.topology == CLUSTER:
        return ClusterTopology(config)
    raise ValueError(f"not a Sentinel or Cluster alias: {config.topology!r}")


# -- statistics -------------------------------------------------------------------------


def _merge_timings(timings: list[Timing]) -> Timing:
    count = sum(t.count for t in timings)
    total = sum(t.total_ms for t in timings)
    # mean and p95 are over recent samples per pool: weight the means by their counts,
    # take the worst p95 (a bound, not a percentile of the union).
    mean = sum(t.mean_ms * t.count for t in timings) / count if count else 0.0
    return Timing(
        count=count,
        total_ms=round(total, 3),
        mean_ms=round(mean, 3),
        p95_ms=max((t.p95_ms for t in timings), default=0.0),
        max_ms=max((t.max_ms for t in timings), default=0.0),
    )


_ZERO_TIMING = Timing(0, 0.0, 0.0, 0.0, 0.0)
_ZEROS: dict[str, Any] = {"int": 0, "float": 0.0, "str": "", "Timing": _ZERO_TIMING}


def combine(stats: list[PoolStats], *, alias: str, address: str, pool_class: str) -> PoolStats:
    """One PoolStats for several pools of an alias (a Cluster's nodes): counters and gauges
    added up (``max_connections`` too: the alias's total), timings merged."""
    values: dict[str, Any] = {}
    for f in fields(PoolStats):
        items = [getattr(s, f.name) for s in stats]
        if not items:
            if f.default is MISSING:
                values[f.name] = _ZEROS.get(str(f.type), 0)
            continue
        first = items[0]
        if f.name == "since":
            values[f.name] = min(items)
        elif isinstance(first, Timing):
            values[f.name] = _merge_timings(items)
        elif isinstance(first, int) and not isinstance(first, bool):
            values[f.name] = sum(items)
        else:
            values[f.name] = first
    values.update(alias=alias, address=address, pool_class=pool_class, pid=os.getpid())
    return PoolStats(**values)
