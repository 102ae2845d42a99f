"""The process's pools: one per alias, built once, shared by every thread.

``get_redis()`` is a dict lookup returning a client made once per alias: building a
``redis.Redis`` costs ~100 µs in redis-py 8, which a per-call build would pay every time.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from typing import Any

import redis
from django.core.exceptions import ImproperlyConfigured

from redis_pool.conf import DEFAULT_ALIAS, PoolConfig, conf
from redis_pool.pools import BlockingRedisPool, RedisPool, build_pool
from redis_pool.stats import PoolStats


class AliasNotFound(KeyError):
    """``get_redis(alias)`` for an alias REDIS_POOL does not define."""

    def __init__(self, alias: str, configured: list[str]) -> None:
        listed = ", ".join(repr(a) for a in configured) or "none"
        super().__init__(f"No Redis pool alias {alias!r} in REDIS_POOL; configured: {listed}.")
        self.alias = alias

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Entry:
    config: PoolConfig
    pool: RedisPool | BlockingRedisPool
    client: redis.Redis


_lock = threading.RLock()
_entries: dict[str, Entry] = {}
_clients: dict[str, redis.Redis] = {}  # the hot path reads only this
_broken: dict[str, list[str]] = {}  # alias -> error messages (already masked)
_loaded = False


def get_redis(alias: str = DEFAULT_ALIAS) -> redis.Redis:
    """The shared client of ``alias``. No network: connections are made on first command."""
    try:
        return _clients[alias]
    except KeyError:
        return _get_slow(alias)


def _get_slow(alias: str) -> redis.Redis:
    with _lock:
        if not _loaded:
            load()
        if alias in _clients:
            return _clients[alias]
        if alias in _broken:
            raise ImproperlyConfigured(
                f"REDIS_POOL alias {alias!r} is misconfigured: "
                + " ".join(_broken[alias])
                + " Run 'manage.py check' for details."
            )
        raise AliasNotFound(alias, sorted(_entries))


def get_pool(alias: str = DEFAULT_ALIAS) -> RedisPool | BlockingRedisPool:
    """The pool behind ``get_redis(alias)``."""
    get_redis(alias)
    return _entries[alias].pool


def get_config(alias: str = DEFAULT_ALIAS) -> PoolConfig:
    """The parsed settings behind ``get_redis(alias)``; ``aio.py`` builds from the same."""
    get_redis(alias)
    return _entries[alias].config


def aliases() -> list[str]:
    """The aliases whose pools are built, in settings order."""
    if not _loaded:
        with _lock:
            if not _loaded:
                load()
    return list(_entries)


def pool_stats(alias: str = DEFAULT_ALIAS) -> PoolStats:
    """This process's statistics for ``alias``: plain data, reading them changes nothing."""
    return get_pool(alias).stats()


def _build(config: PoolConfig) -> Entry:
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
        # Swap the lookup dict's content last so get_redis() sees old or new, never empty.
        _clients.update({alias: entry.client for alias, entry in new.items()})
        for alias in [a for a in _clients if a not in new]:
            del _clients[alias]
        _loaded = True
    for alias, entry in old.items():
        if new.get(alias) is not entry:
            entry.pool.disconnect()


def close_all() -> None:
    """Disconnect every pool (at exit, and in tests)."""
    global _loaded
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
        _clients.clear()
        _broken.clear()
        _loaded = False
    for entry in entries:
        entry.pool.disconnect()


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("REDIS_POOL", "SETTINGS_MODULE"):
        load()


atexit.register(close_all)
