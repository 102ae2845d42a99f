"""The topology of a Sentinel or Cluster alias, by ``config.topology``: sync and async."""

from __future__ import annotations

from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import CLUSTER, SENTINEL
from redis_pool.topologies.cluster import AsyncClusterEntry, ClusterTopology
from redis_pool.topologies.sentinel import AsyncSentinelEntry, SentinelTopology, build_sentinel

Topology = SentinelTopology | ClusterTopology
AsyncTopologyEntry = AsyncSentinelEntry | AsyncClusterEntry


def _not_a_topology(config: PoolConfig) -> ValueError:
    return ValueError(f"not a Sentinel or Cluster alias: {config.topology!r}")


def build_topology(config: PoolConfig) -> Topology:
    """The clients and pools of a Sentinel or Cluster alias. Constructs objects only."""
    if config.topology == SENTINEL:
        return SentinelTopology(config)
    if config.topology == CLUSTER:
        return ClusterTopology(config)
    raise _not_a_topology(config)


def build_async_topology(config: PoolConfig) -> AsyncTopologyEntry:
    """The async client(s) of a Sentinel or Cluster alias for the running loop: an entry with
    the interface of ``pools.asyncio.AsyncEntry`` (``client``, ``retire()``, ``connected()``,
    ``aclose()``, ``stats()``, ``connections()``). Constructs objects only."""
    if config.topology == SENTINEL:
        return build_sentinel(config)
    if config.topology == CLUSTER:
        return AsyncClusterEntry(config)
    raise _not_a_topology(config)
