"""The registry: one pool per alias per process, built once, rebuilt on settings change."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from redis_pool import AliasNotFound, get_pool, get_redis, pool_stats, registry
from redis_pool.config.defaults import (
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
)
from redis_pool.pools import BlockingRedisPool, RedisPool
from tests.redis_server import RedisServer


def test_same_client_every_call() -> None:
    assert get_redis() is get_redis()
    assert get_redis("default") is get_redis()
    assert get_redis().connection_pool is get_pool("default")


def test_aliases_with_the_same_url_get_separate_pools(redis_server: RedisServer) -> None:
    same = {"a": {"url": redis_server.url}, "b": {"url": redis_server.url}}
    with override_settings(REDIS_POOL=same, REDIS_POOL_MIDDLEWARE_ALIAS="a"):
        assert get_pool("a") is not get_pool("b")
        get_redis("a").ping()
        get_redis("b").ping()
        names = sorted(c["name"] for c in redis_server.clients_named("redis_pool:"))
    assert [n.split(":")[2] for n in names] == ["a", "b"]


def test_unknown_alias_lists_configured() -> None:
    with pytest.raises(AliasNotFound) as excinfo:
        get_redis("nope")
    assert str(excinfo.value) == (
        "No Redis pool alias 'nope' in REDIS_POOL; configured: 'default', 'other'."
    )
    assert isinstance(excinfo.value, KeyError)


def test_misconfigured_alias_raises_improperly_configured() -> None:
    with override_settings(REDIS_POOL={"default": {}, "bad": {"max_connections": 0}}):
        get_redis()  # the good alias still works
        with pytest.raises(ImproperlyConfigured) as excinfo:
            get_redis("bad")
    assert str(excinfo.value) == (
        "REDIS_POOL alias 'bad' is misconfigured: REDIS_POOL['bad']['max_connections'] must "
        "be a positive integer of at most 100,000, got 0. Run 'manage.py check' for details."
    )


def test_defaults_applied() -> None:
    with override_settings(REDIS_POOL={"url": "redis://127.0.0.1:1/0"}):
        pool = get_pool()
        kwargs = pool.connection_kwargs
        assert isinstance(pool, BlockingRedisPool)
        assert pool.max_connections == DEFAULT_MAX_CONNECTIONS
        assert pool.timeout == DEFAULT_POOL_TIMEOUT
        assert kwargs["socket_connect_timeout"] == DEFAULT_SOCKET_CONNECT_TIMEOUT
        assert kwargs["socket_timeout"] == DEFAULT_SOCKET_TIMEOUT
        assert kwargs["health_check_interval"] == DEFAULT_HEALTH_CHECK_INTERVAL
        assert kwargs["socket_keepalive"] is True
        retry = kwargs["retry"]
        assert retry.get_retries() == 2
        assert retry._supported_errors == (redis.ConnectionError,)
        assert kwargs["client_name"].startswith("redis_pool:tests:default:")


def test_explicit_values_win() -> None:
    explicit = {
        "url": "redis://127.0.0.1:1/0",
        "max_connections": 7,
        "pool_timeout": None,
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.25,
        "health_check_interval": 0,
        "client_name": "mine",
        "socket_keepalive": False,
    }
    with override_settings(REDIS_POOL=explicit):
        pool = get_pool()
        assert type(pool) is RedisPool
        assert pool.max_connections == 7
        kwargs = pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.5
        assert kwargs["socket_connect_timeout"] == 0.25
        assert kwargs["health_check_interval"] == 0
        assert kwargs["client_name"] == "mine"
        assert kwargs["socket_keepalive"] is False


def test_build_touches_no_network() -> None:
    # Port 1 refuses connections: building must not try; the first command must.
    start = time.monotonic()
    with override_settings(REDIS_POOL={"url": "redis://127.0.0.1:1/0"}):
        client = get_redis()
        assert pool_stats().created == 0
        with pytest.raises(redis.ConnectionError):
            client.ping()
    assert time.monotonic() - start < 2.0


def test_override_settings_rebuilds_only_changed(redis_server: RedisServer) -> None:
    default_pool = get_pool("default")
    other_pool = get_pool("other")
    get_redis("other").ping()
    assert other_pool.stats().open == 1
    changed = {
        "default": {"url": redis_server.url},
        "other": {"url": redis_server.url.replace("/0", "/2")},
    }
    with override_settings(REDIS_POOL=changed):
        assert get_pool("default") is default_pool
        assert get_pool("other") is not other_pool
        # The old pool's connection was disconnected, not leaked.
        assert other_pool.stats().open == 0
        get_redis("other").set("x", "1")
        assert redis.Redis(host="127.0.0.1", port=redis_server.port, db=2).get("x") == b"1"
    assert get_pool("default") is default_pool
    assert get_pool("other") is not other_pool


def test_client_name_names_app_alias_host_pid(redis_server: RedisServer) -> None:
    import os

    get_redis().ping()
    [client] = redis_server.clients_named("redis_pool:tests:default:")
    host = socket.gethostname().split(".")[0]
    assert client["name"] == f"redis_pool:tests:default:{host}:{os.getpid()}"


def test_one_pool_shared_by_threads(redis_server: RedisServer) -> None:
    import threading

    seen: list[Any] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait(timeout=5)
        seen.append(get_pool())
        get_redis().incr("n")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len({id(p) for p in seen}) == 1
    assert int(get_redis().get("n") or 0) == 8
    stats = pool_stats()
    assert stats.open <= 8
    assert stats.in_use == 0


def test_close_all_disconnects(redis_server: RedisServer) -> None:
    pool = get_pool()
    get_redis().ping()
    assert len(redis_server.clients_named("redis_pool:tests:default:")) == pool.stats().open >= 1
    registry.close_all()
    assert pool.stats().open == 0
    deadline = time.monotonic() + 5
    while redis_server.clients_named("redis_pool:tests:default:") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert redis_server.clients_named("redis_pool:tests:default:") == []
    get_redis().ping()  # rebuilt lazily on next use


def test_driver_info_built_once_and_names_us() -> None:
    from redis_pool.config.defaults import shared_driver_info

    pool = get_pool()
    info = shared_driver_info()
    if info is None:  # redis-py 7 has no DriverInfo
        assert "driver_info" not in pool.connection_kwargs
        return
    assert pool.connection_kwargs["driver_info"] is info
    assert get_pool("other").connection_kwargs["driver_info"] is info
    assert info.formatted_name.startswith("redis-py(django-redis-pool_v")
