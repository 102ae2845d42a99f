"""The process's pools: one per alias, built once, shared by every thread.

``get_redis()`` is a dict lookup returning a client made once per alias: building a
``redis.Redis`` costs ~100 µs in redis-py 8, which a per-call build would pay every time.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from typing import cast

import redis
from django.core.exceptions import ImproperlyConfigured

from redis_pool.config.alias import PoolConfig
from redis_pool.config.keys import DEFAULT_ALIAS, STANDALONE
from redis_pool.config.settings import conf
from redis_pool.exceptions import AliasNotFound
from redis_pool.pools.sync import BlockingRedisPool, RedisPool, build_pool
from redis_pool.stats.counters import PoolStats
from redis_pool.topologies.build import Topology, build_topology
from redis_pool.topologies.cluster import combine
from redis_pool.topologies.sentinel import SentinelTopology


@dataclass
class Entry:
    config: PoolConfig
    pool: RedisPool | BlockingRedisPool | None  # None: a Cluster alias (a pool per node)
    client: redis.Redis | None  # None: a Cluster alias (its client is built on first use)
    topology: Topology | None = None  # Sentinel and Cluster aliases

    def current_client(self) -> redis.Redis | None:
        if self.topology is not None:
            # A RedisCluster has the same command methods; typed as Redis so that the
            # common case needs no narrowing (README: Sentinel, Cluster).
            return cast("redis.Redis | None", self.topology.peek())
        return self.client

    def pools(self) -> list[RedisPool | BlockingRedisPool]:
        if self.topology is not None:
            return self.topology.pools()
        return [self.pool] if self.pool is not None else []

    def retire(self, successor: Entry | None) -> None:
        """Replaced by a settings change: threads may still be running commands on it."""
        if self.topology is not None or self.pool is None:
            self.close()
            return
        heir = None
        if successor is not None and successor.topology is None:
            heir = successor.pool
        self.pool.retire(heir)

    def close(self) -> None:
        if self.topology is not None:
            self.topology.close()
        elif self.pool is not None:
            self.pool.disconnect()


_lock = threading.RLock()
_entries: dict[str, Entry] = {}
_clients: dict[str, redis.Redis] = {}  # the hot path reads only this
_broken: dict[str, list[str]] = {}  # alias -> error messages (already masked)
_setting_errors: list[str] = []  # REDIS_POOL itself is unusable (E001): every alias is broken
_loaded = False


def get_redis(alias: str = DEFAULT_ALIAS) -> redis.Redis:
    """The shared client of ``alias``. No network: connections are made on first command."""
    try:
        return _clients[alias]
    except KeyError:
        return _get_slow(alias)


def _get_slow(alias: str) -> redis.Redis:
    entry = _entry(alias)
    client = entry.current_client()
    if client is None and entry.topology is not None:
        # A Cluster alias's first use: this asks the cluster for its layout, outside our
        # lock (the topology has its own), so other aliases are not held up meanwhile.
        client = cast(redis.Redis, entry.topology.client())
    assert client is not None
    with _lock:
        if _entries.get(alias) is entry:
            _clients[alias] = client
    return client


def _entry(alias: str) -> Entry:
    """The alias's entry, settings loaded first if need be. No network."""
    with _lock:
        if not _loaded:
            load()
        if alias in _entries:
            return _entries[alias]
        broken = _broken.get(alias) or _setting_errors
        if broken:
            raise ImproperlyConfigured(
                f"REDIS_POOL alias {alias!r} is misconfigured: "
                + " ".join(broken)
                + " Run 'manage.py check' for details."
            )
        raise AliasNotFound(alias, sorted(_entries))


def get_pool(alias: str = DEFAULT_ALIAS) -> RedisPool | BlockingRedisPool:
    """The pool behind ``get_redis(alias)`` (a Sentinel alias: the master's pool).

    A Cluster alias has one pool per node: ``node_pools()``.
    """
    pool = _entry(alias).pool
    if pool is None:
        raise TypeError(
            f"REDIS_POOL alias {alias!r} is a Redis Cluster: it has one pool per node, "
            f"see node_pools({alias!r}) and node_stats({alias!r})."
        )
    return pool


def get_replica(alias: str = DEFAULT_ALIAS) -> redis.Redis:
    """A client for reads that may lag behind writes.

    A Sentinel alias: its replicas (round robin; the master when none is up), through a
    pool of their own. Any other alias: the same client as ``get_redis(alias)``, so code
    written for a replicated deployment runs unchanged against one server.
    """
    entry = _entry(alias)
    if isinstance(entry.topology, SentinelTopology):
        return entry.topology.replica()
    return get_redis(alias)


def node_pools(alias: str = DEFAULT_ALIAS) -> list[RedisPool | BlockingRedisPool]:
    """Every pool behind ``alias``: one for a server, the master's and the replicas' for a
    Sentinel alias, one per node for a Cluster (none before its first use). No network."""
    return _entry(alias).pools()


def node_stats(alias: str = DEFAULT_ALIAS) -> list[PoolStats]:
    """``stats()`` of each of ``node_pools(alias)``, in the same order."""
    return [pool.stats() for pool in node_pools(alias)]


def get_config(alias: str = DEFAULT_ALIAS) -> PoolConfig:
    """The parsed settings behind ``get_redis(alias)``; ``aio.py`` builds from the same."""
    return _entry(alias).config


def aliases() -> list[str]:
    """The aliases whose pools are built, in settings order."""
    if not _loaded:
        with _lock:
            if not _loaded:
                load()
    return list(_entries)


def pool_stats(alias: str = DEFAULT_ALIAS) -> PoolStats:
    """This process's statistics for ``alias``: plain data, reading them changes nothing.

    A Sentinel alias: its master's pool. A Cluster alias: its node pools added up
    (``node_stats()`` has them one by one).
    """
    entry = _entry(alias)
    if entry.pool is not None:
        return entry.pool.stats()
    nodes = [pool.stats() for pool in entry.pools()]
    name = nodes[0].pool_class if nodes else "cluster"
    return combine(nodes, alias=alias, address=entry.config.address, pool_class=name)


def _build(config: PoolConfig) -> Entry:
    if config.topology != STANDALONE:
        topology = build_topology(config)
        return Entry(config, topology.pool, None, topology)
    pool = build_pool(config)
    return Entry(config, pool, redis.Redis(connection_pool=pool))


def load() -> None:
    """(Re)build pools from settings: keep unchanged aliases, replace changed ones.

    Called from ``AppConfig.ready()`` and on ``setting_changed``. Never raises for bad
    settings (the system checks report them) and never touches the network.
    """
    global _loaded
    parsed = conf.parsed()
    with _lock:
        old = dict(_entries)
        new: dict[str, Entry] = {}
        for alias, config in parsed.configs.items():
            previous = old.get(alias)
            if previous is not None and previous.config.options == config.options:
                new[alias] = previous
                continue
            try:
                new[alias] = _build(config)
            except Exception as exc:  # a redis-py constructor refusing a value
                parsed.errors_by_alias[alias] = [f"{type(exc).__name__}: {exc}"]
        _entries.clear()
        _entries.update(new)
        _broken.clear()
        _broken.update(parsed.errors_by_alias)
        _setting_errors[:] = parsed.setting_errors
        # Swap the lookup dict's content last so get_redis() sees old or new, never empty.
        clients = {alias: entry.current_client() for alias, entry in new.items()}
        _clients.update({alias: c for alias, c in clients.items() if c is not None})
        for alias in [a for a in _clients if clients.get(a) is None]:
            del _clients[alias]
        _loaded = True
    for alias, entry in old.items():
        if new.get(alias) is not entry:
            entry.retire(new.get(alias))


def close_all() -> None:
    """Disconnect every pool (at exit, and in tests)."""
    global _loaded
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
        _clients.clear()
        _broken.clear()
        _setting_errors.clear()
        _loaded = False
    for entry in entries:
        entry.close()


atexit.register(close_all)
