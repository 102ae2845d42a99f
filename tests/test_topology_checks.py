"""Settings of Sentinel and Cluster aliases: what they parse to, and one test per check ID
(E030-E033; IDs are never reused). Pure: no server is started or contacted."""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from redis_pool.checks import check_settings
from redis_pool.config.alias import parse

SECRET = "s3cr3t-pa55"
SENTINELS = [("10.0.0.1", 26379), ("10.0.0.2", 26379)]


def run(value: Any) -> list[tuple[str, str, str | None]]:
    with override_settings(REDIS_POOL=value):
        return [(m.id or "", m.msg, m.hint) for m in check_settings()]


def test_sentinel_settings_parse() -> None:
    options = {
        "sentinels": SENTINELS,
        "service_name": "mymaster",
        "password": SECRET,
        "db": 2,
        "sentinel_kwargs": {"password": "sentinel-" + SECRET, "socket_timeout": 0.5},
    }
    assert run(options) == []
    config = parse(options).configs["default"]
    assert config.topology == "sentinel"
    assert config.discovery.sentinels == tuple(SENTINELS)
    assert config.discovery.service_name == "mymaster"
    assert config.address == "redis+sentinel://********@10.0.0.1:26379,10.0.0.2:26379/mymaster/2"
    assert "host" not in config.kwargs
    assert "port" not in config.kwargs
    assert config.kwargs["password"] == SECRET
    assert config.discovery.sentinel_kwargs["password"] == "sentinel-" + SECRET
    assert config.discovery.sentinel_kwargs["socket_timeout"] == 0.5  # given: wins over the alias's
    assert config.discovery.sentinel_kwargs["socket_connect_timeout"] == 2.0  # the alias's default
    assert config.discovery.sentinel_kwargs["retry"].get_retries() == 0
    assert SECRET not in repr(config)


def test_cluster_url_and_startup_nodes_parse() -> None:
    options = {
        "url": f"rediss+cluster://:{SECRET}@10.0.0.1:7000",
        "startup_nodes": [("10.0.0.2", 7000), ("10.0.0.1", 7000)],
        "max_connections": 8,
    }
    assert run(options) == []
    config = parse(options).configs["default"]
    assert config.topology == "cluster"
    assert config.transport == "ssl"
    assert config.discovery.startup_nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7000))
    assert config.address == "rediss+cluster://********@10.0.0.1:7000,10.0.0.2:7000"
    assert config.max_connections == 8
    assert {"host", "port", "db"}.isdisjoint(config.kwargs)


def test_cluster_key_with_host_and_port() -> None:
    config = parse({"cluster": True, "host": "10.0.0.1", "port": 7001}).configs["default"]
    assert config.topology == "cluster"
    assert config.discovery.startup_nodes == (("10.0.0.1", 7001),)
    assert config.address == "redis+cluster://10.0.0.1:7001"


def test_standalone_is_the_default() -> None:
    config = parse({"url": "redis://10.0.0.1:6379/0"}).configs["default"]
    assert config.topology == "standalone"
    assert config.discovery.sentinels == config.discovery.startup_nodes == ()


def test_e030_not_a_list_of_host_port_pairs() -> None:
    assert run({"sentinels": "10.0.0.1:26379", "service_name": "m"}) == [
        (
            "redis_pool.E030",
            "REDIS_POOL['default']['sentinels'] must be a non-empty list of (host, port) "
            "pairs, got '10.0.0.1:26379'.",
            "For example [('10.0.0.1', 26379)].",
        )
    ]
    assert run({"cluster": True, "startup_nodes": [("10.0.0.1", 70000)]}) == [
        (
            "redis_pool.E030",
            "REDIS_POOL['default']['startup_nodes'] must be a non-empty list of (host, port) "
            "pairs, got [('10.0.0.1', 70000)].",
            "For example [('10.0.0.1', 7000)].",
        )
    ]


def test_e031_sentinels_without_service_name() -> None:
    assert run({"sentinels": SENTINELS}) == [
        (
            "redis_pool.E031",
            "REDIS_POOL['default'] names sentinels but no 'service_name' (got None).",
            "Set 'service_name' to the name the sentinels monitor the master under "
            "(SENTINEL MASTERS lists it).",
        )
    ]


def test_e032_bad_sentinel_kwargs_never_show_a_password() -> None:
    options = {
        "sentinels": SENTINELS,
        "service_name": "m",
        "sentinel_kwargs": {"pasword": SECRET, "password": 42},
    }
    messages = run(options)
    assert messages == [
        (
            "redis_pool.E032",
            "REDIS_POOL['default']['sentinel_kwargs'] has an unknown key 'pasword'.",
            "Did you mean 'password'?",
        ),
        (
            "redis_pool.E032",
            "REDIS_POOL['default']['sentinel_kwargs']['password'] must be a string or None, "
            "got '********'.",
            None,
        ),
    ]
    assert run({"sentinels": SENTINELS, "service_name": "m", "sentinel_kwargs": [1]}) == [
        (
            "redis_pool.E032",
            "REDIS_POOL['default']['sentinel_kwargs'] must be a dict of redis.Redis() keyword "
            "arguments, got list.",
            None,
        )
    ]


def test_e033_options_that_do_not_fit_the_topology() -> None:
    assert run({"sentinels": SENTINELS, "service_name": "m", "host": "10.0.0.9"}) == [
        (
            "redis_pool.E033",
            "REDIS_POOL['default']['host'] does not apply to a Sentinel alias: the sentinels "
            "name the master.",
            "Remove it; use 'password', 'username', 'db' and 'ssl' keys for the master connection.",
        )
    ]
    assert run({"url": "redis+cluster://10.0.0.1:7000/3"}) == [
        (
            "redis_pool.E033",
            "REDIS_POOL['default'] selects Redis Cluster with db=3: a cluster has database 0 only.",
            "Remove the database number (or use 0).",
        )
    ]
    assert run({"url": "redis://10.0.0.1:6379/0", "service_name": "m"}) == [
        (
            "redis_pool.E033",
            "REDIS_POOL['default']['service_name'] only applies to a Sentinel alias, which "
            "has 'sentinels'.",
            "Add 'sentinels': [(host, port), ...] or remove the key.",
        )
    ]
    assert run({"host": "10.0.0.1", "startup_nodes": [("10.0.0.2", 7000)]}) == [
        (
            "redis_pool.E033",
            "REDIS_POOL['default']['startup_nodes'] only applies to a Cluster alias.",
            "Add 'cluster': True or use a redis+cluster:// url.",
        )
    ]
    assert run({"cluster": True, "path": "/tmp/redis.sock"})[0][:2] == (
        "redis_pool.E033",
        "REDIS_POOL['default'] selects Redis Cluster, which has no unix sockets.",
    )


def test_warnings_alone_do_not_drop_an_alias() -> None:
    for options in (
        {"url": "redis://10.0.0.1:6379/0", "socket_timeout": None},
        {"url": "redis+cluster://10.0.0.1:7000", "socket_timeout": None},
        {"sentinels": SENTINELS, "service_name": "m", "socket_timeout": None},
    ):
        parsed = parse(options)
        assert [p.id for p in parsed.problems] == ["redis_pool.W002"]
        assert "default" in parsed.configs
