"""``redis.asyncio`` clients for Sentinel and Cluster aliases, for one event loop.

The async twin of ``topologies.py``. ``build_async_topology(config)`` returns an entry
with the interface of ``aio_pools.AsyncEntry`` (``client``, ``retire()``, ``connected()``,
``aclose()``, ``stats()``, ``connections()``), so ``aio.py`` keeps one per (alias, loop)
the same way. Constructs objects only: no network.

- Sentinel: our async pools composed with redis.asyncio's ``SentinelConnectionPool``,
  one for the master and one for the replicas (``entry.replica``), with the same master
  check as the sync side.
- Cluster: redis.asyncio's ``RedisCluster`` has no pools, only per-node connection lists
  with ``max_connections`` each (no waiting: ``pool_timeout`` does not apply). Each node's
  connections count opens, closes and errors into counters of that node, so ``stats()``
  lists the nodes; checkouts are not counted there.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field, replace
from functools import cache
from time import monotonic
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as SyncRetry

from redis_pool.aio_pools import (
    AsyncBlockingRedisPool,
    AsyncRedisPool,
    async_kwargs,
    instrumented_async_connection_class,
)
from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import CLUSTER, SENTINEL, SSL
from redis_pool.config.secrets import node_address
from redis_pool.pools import InstrumentedPoolMixin
from redis_pool.stats import Counters, PoolStats
from redis_pool.topologies import MASTER_CHECK_BACKOFF, MASTER_CHECK_INTERVAL

AnyAsyncPool = AsyncRedisPool | AsyncBlockingRedisPool


# -- Sentinel ---------------------------------------------------------------------------


class _AsyncSentinelPoolMixin:
    """The master check of ``topologies._SentinelPoolMixin``, for one event loop."""

    is_master: bool
    _rp_next_check = 0.0
    _rp_checking = False

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_master and not self._rp_checking and monotonic() >= self._rp_next_check:
            self._rp_checking = True  # one task asks; the others go on
            try:
                self._rp_next_check = monotonic() + MASTER_CHECK_INTERVAL
                await self.get_master_address()  # type: ignore[attr-defined]
            except (RedisConnectionError, RedisTimeoutError):
                self._rp_next_check = monotonic() + MASTER_CHECK_BACKOFF
            finally:
                self._rp_checking = False
        return await super().get_connection(*args, **kwargs)  # type: ignore[misc]


class AsyncSentinelRedisPool(_AsyncSentinelPoolMixin, AsyncRedisPool, SentinelConnectionPool):
    """Plain asyncio pool to the master (or a replica) the sentinels name."""


class AsyncSentinelBlockingRedisPool(
    _AsyncSentinelPoolMixin, AsyncBlockingRedisPool, SentinelConnectionPool
):
    """Blocking asyncio pool to the master (or a replica) the sentinels name."""


def _async_retry(retry: Any) -> Any:
    if isinstance(retry, SyncRetry):
        return AsyncRetry(NoBackoff(), retry.get_retries(), retry._supported_errors)  # type: ignore[arg-type]
    return retry


def _sentinel_pool(config: PoolConfig, sentinel: Sentinel, *, master: bool) -> AnyAsyncPool:
    kwargs = async_kwargs(config)
    base = SentinelManagedSSLConnection if config.transport == SSL else SentinelManagedConnection
    kwargs["connection_class"] = instrumented_async_connection_class(base)
    kwargs.update(
        service_name=config.discovery.service_name, sentinel_manager=sentinel, is_master=master
    )
    address = config.address if master else f"{config.address} replicas"
    pool_config = replace(config, address=address)
    if config.pool_timeout is None:
        return AsyncSentinelRedisPool(pool_config, kwargs)
    return AsyncSentinelBlockingRedisPool(pool_config, kwargs)


@dataclass
class AsyncSentinelEntry:
    """A Sentinel alias on one event loop: master and replica clients and pools."""

    config: PoolConfig
    client: redis.asyncio.Redis
    replica: redis.asyncio.Redis
    pools: list[AnyAsyncPool]
    sentinel: Sentinel

    def retire(self) -> None:
        for pool in self.pools:
            pool.retired = True

    def connected(self) -> bool:
        return any(connection.is_connected for connection in self.connections())

    async def aclose(self, *, in_use: bool = True) -> None:
        for pool in self.pools:
            await pool.disconnect(inuse_connections=in_use)
        await aclose_sentinels(self.sentinel)

    def stats(self) -> list[PoolStats]:
        return [pool.stats() for pool in self.pools]

    def connections(self) -> list[Any]:
        found: list[Any] = []
        for pool in [*self.pools, *(s.connection_pool for s in self.sentinel.sentinels)]:
            found += [*pool._available_connections, *pool._in_use_connections]
        return found


async def aclose_sentinels(manager: Sentinel) -> None:
    """Close the sentinel clients of ``manager`` and their pools.

    ``Sentinel.aclose()`` is new in redis-py 8; on 7.x we close its clients ourselves, the
    same way: all of them, then raise the first error.
    """
    aclose = getattr(manager, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    results = await asyncio.gather(
        *(client.aclose() for client in manager.sentinels), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


def build_sentinel(config: PoolConfig) -> AsyncSentinelEntry:
    sentinel_kwargs = dict(config.discovery.sentinel_kwargs)
    sentinel_kwargs["retry"] = _async_retry(sentinel_kwargs.get("retry"))
    sentinel = Sentinel(list(config.discovery.sentinels), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    master = _sentinel_pool(config, sentinel, master=True)
    replicas = _sentinel_pool(config, sentinel, master=False)
    return AsyncSentinelEntry(
        config=config,
        client=redis.asyncio.Redis(connection_pool=master),
        replica=redis.asyncio.Redis(connection_pool=replicas),
        pools=[master, replicas],
        sentinel=sentinel,
    )


# -- Cluster ----------------------------------------------------------------------------


@cache
def _cluster_keys() -> frozenset[str]:
    return frozenset(inspect.signature(RedisCluster.__init__).parameters) - {"self"}


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
        connection_class = kwargs.pop("connection_class")
        retry = kwargs.pop("retry", None)
        accepted = {k: v for k, v in kwargs.items() if k in _cluster_keys()}
        (host, port), *others = config.discovery.startup_nodes
        client = RedisCluster(
            host=host,
            port=port,
            startup_nodes=[ClusterNode(h, p) for h, p in others],
            max_connections=config.max_connections,  # per node
            retry=retry,
            ssl=config.transport == SSL,
            **accepted,
        )
        # RedisCluster has no connection_class parameter: it picks Connection or
        # SSLConnection into this dict, which every node (startup nodes included) copies.
        node_class = self._node_connection_class(connection_class)
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
                address=node_address(config.kwargs, config.transport, host, port),
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


AsyncTopologyEntry = AsyncSentinelEntry | AsyncClusterEntry


def build_async_topology(config: PoolConfig) -> AsyncTopologyEntry:
    """The async client(s) of a Sentinel or Cluster alias for the running loop."""
    if config.topology == SENTINEL:
        return build_sentinel(config)
    if config.topology == CLUSTER:
        return AsyncClusterEntry(config)
    raise ValueError(f"not a Sentinel or Cluster alias: {config.topology!r}")
