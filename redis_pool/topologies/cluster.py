"""Cluster aliases, sync and asyncio, around one policy.

Shared by both sides: where the client starts (the startup nodes), which of the alias's
keywords it takes, that ``RedisCluster`` retries whole commands with the alias's ``Retry``
(re-reading the layout in between) while the nodes do not retry, that ``max_connections``
applies per node, and each node's masked address.

- Sync: redis-py's ``RedisCluster`` queries the cluster in its constructor, so the client is
  built on first use (``client()``), not at start-up; each node gets one of our pools, so
  ``max_connections``, ``pool_timeout`` and the timeouts apply per node.
- Asyncio: redis.asyncio's ``RedisCluster`` has no pools, only per-node connection lists
  with ``max_connections`` each (no waiting: ``pool_timeout`` does not apply). Each node's
  connections count opens, closes and errors into counters of that node, so ``stats()``
  lists the nodes; checkouts are not counted there. The client asks the cluster for its
  layout on its first command.
"""

from __future__ import annotations

import inspect
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cache
from typing import Any

from redis.asyncio import cluster as async_cluster
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import SSL
from redis_pool.config.secrets import node_address, redact
from redis_pool.exceptions import ClusterUnavailableError
from redis_pool.pools.asyncio import async_kwargs
from redis_pool.pools.base import InstrumentedPoolMixin
from redis_pool.pools.retry import async_retry
from redis_pool.pools.sync import BlockingRedisPool, RedisPool
from redis_pool.stats.counters import Counters, PoolStats, Timing

AnyPool = RedisPool | BlockingRedisPool


# -- the policy -------------------------------------------------------------------------


# Not the client's to take: the Retry goes to the client separately, the connection class
# is set per node, and max_connections is per node (the node pools' own).
_NOT_FOR_CLIENT = frozenset({"retry", "connection_class", "max_connections"})


def _startup(config: PoolConfig) -> tuple[str, int, list[tuple[str, int]]]:
    """The startup node the client starts from, and the others."""
    (host, port), *others = config.discovery.startup_nodes
    return host, port, others


def _client_kwargs(
    kwargs: Mapping[str, Any], accepted: frozenset[str] | None = None
) -> dict[str, Any]:
    """The alias's keywords (sync or async) that the client takes (``accepted``: when it
    does not take them all)."""
    return {
        k: v
        for k, v in kwargs.items()
        if k not in _NOT_FOR_CLIENT and (accepted is None or k in accepted)
    }


def _node_address(config: PoolConfig, host: str, port: int) -> str:
    return node_address(config.kwargs, config.transport, host, port)


# -- sync -------------------------------------------------------------------------------


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
        address = _node_address(config, kwargs["host"], kwargs["port"])
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
        host, port, others = _startup(self.config)
        host = f"[{host}]" if ":" in host else host
        try:
            return RedisCluster(
                # A URL only so that redis-py builds the node pools with
                # connection_pool_class; the transport comes from our connection class.
                url=f"redis://{host}:{port}",
                startup_nodes=[ClusterNode(h, p) for h, p in others],  # type: ignore[no-untyped-call]
                retry=self.config.kwargs.get("retry"),
                connection_pool_class=self._pool_class,
                **_client_kwargs(self.config.kwargs),
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


# -- asyncio ----------------------------------------------------------------------------


@cache
def _async_cluster_keys() -> frozenset[str]:
    return frozenset(inspect.signature(async_cluster.RedisCluster.__init__).parameters) - {"self"}


@dataclass
class AsyncClusterNode:
    """What ``InstrumentedPoolMixin.stats()`` reads, for one node of an async cluster."""

    alias: str
    address: str
    max_connections: int
    counters: Counters
    connection_kwargs: dict[str, Any]
    _rp_leak_threshold: float | None = None


@dataclass
class AsyncClusterEntry:
    """A Cluster alias on one event loop. The client asks the cluster for its layout on
    its first command (redis.asyncio's RedisCluster does that itself)."""

    config: PoolConfig
    client: Any = None
    nodes: dict[str, AsyncClusterNode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        config = self.config
        kwargs = async_kwargs(config)
        host, port, others = _startup(config)
        client = async_cluster.RedisCluster(
            host=host,
            port=port,
            startup_nodes=[async_cluster.ClusterNode(h, p) for h, p in others],
            max_connections=config.max_connections,  # per node
            retry=async_retry(config.kwargs.get("retry")),
            ssl=config.transport == SSL,
            **_client_kwargs(kwargs, _async_cluster_keys()),
        )
        # RedisCluster has no connection_class parameter: it picks Connection or
        # SSLConnection into this dict, which every node (startup nodes included) copies.
        node_class = self._node_connection_class(kwargs["connection_class"])
        client.connection_kwargs["connection_class"] = node_class
        for node in client.startup_nodes:
            node.connection_class = node_class
        self.client = client

    def _node_connection_class(self, base: type[Any]) -> type[Any]:
        entry = self

        class NodeConnection(base):  # type: ignore[misc]
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self._rp_counters = entry._counters_for(self.host, self.port)
                self._rp_alias = entry.config.alias

        NodeConnection.__name__ = NodeConnection.__qualname__ = base.__name__
        return NodeConnection

    def _counters_for(self, host: str, port: int) -> Counters:
        name = f"{host}:{port}"
        node = self.nodes.get(name)
        if node is None:
            config = self.config
            threshold = config.leak_detection_threshold
            node = self.nodes[name] = AsyncClusterNode(
                alias=config.alias,
                address=_node_address(config, host, port),
                max_connections=config.max_connections,
                counters=Counters(threshold),
                connection_kwargs=config.kwargs,
                _rp_leak_threshold=threshold,
            )
        return node.counters

    def retire(self) -> None:
        pass  # no pools to mark: aclose() closes the node connections

    def connected(self) -> bool:
        return any(connection.is_connected for connection in self.connections())

    async def aclose(self, *, in_use: bool = True) -> None:
        if in_use:
            await self.client.aclose()
            return
        # Retired after a settings change: close what is idle, leave borrowed ones be.
        for node in self._nodes().values():
            await node.disconnect_free_connections()

    def _nodes(self) -> dict[str, Any]:
        nodes = {n.name: n for n in self.client.startup_nodes}
        nodes.update(self.client.nodes_manager.nodes_cache)
        return nodes

    def stats(self) -> list[PoolStats]:
        return [
            InstrumentedPoolMixin.stats(node)  # type: ignore[arg-type]
            for _, node in sorted(self.nodes.items())
        ]

    def connections(self) -> list[Any]:
        return [c for node in self._nodes().values() for c in node._connections]


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
