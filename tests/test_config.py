"""The typed ``PoolConfig``: settings parsed once, and what the consumers rely on it for
(issue 10: one host name, one masking rule, a client name set anywhere is kept)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from django.test import override_settings

from redis_pool import aget_redis, get_redis, pool_stats
from redis_pool.config.alias import PoolConfig, parse_alias
from redis_pool.config.secrets import MASK, redact
from redis_pool.fleet import scrub
from tests.redis_server import RedisServer


def config_of(options: dict[str, object]) -> PoolConfig:
    config, problems = parse_alias("default", options)
    assert config is not None, problems
    return config


def test_options_are_parsed_into_typed_fields() -> None:
    config = config_of(
        {
            "url": "rediss://h:6380/1",
            "publish_stats": False,
            "publish_interval": 5,
            "leak_detection_threshold": 3,
        }
    )
    assert (config.topology, config.transport) == ("standalone", "ssl")
    assert config.publish_stats is False
    assert config.publish_interval == 5.0
    assert isinstance(config.publish_interval, float)
    assert config.leak_detection_threshold == 3.0
    assert isinstance(config.leak_detection_threshold, float)
    assert config.client_name_set is False
    defaults = config_of({"path": "/tmp/r.sock"})
    assert (defaults.transport, defaults.publish_stats, defaults.publish_interval) == (
        "unix",
        True,
        2.0,
    )
    assert defaults.leak_detection_threshold is None


@pytest.mark.parametrize(
    "options",
    [{"url": "redis://h/0", "client_name": "mine"}, {"url": "redis://h/0?client_name=mine"}],
)
def test_a_client_name_set_in_a_key_or_the_url_counts_as_set(options: dict[str, object]) -> None:
    config = config_of(options)
    assert config.client_name_set is True
    assert config.kwargs["client_name"] == "mine"


def test_an_async_pool_keeps_a_client_name_given_in_the_url(redis_server: RedisServer) -> None:
    # Before issue 10 only the 'client_name' key counted: the async pool replaced a name
    # given in the url's query string with the default one.
    async def name() -> object:
        client = aget_redis()
        try:
            return await client.client_getname()
        finally:
            await client.aclose()

    with override_settings(REDIS_POOL={"url": f"{redis_server.url}?client_name=mine"}):
        assert get_redis().client_getname() == "mine"
        assert asyncio.run(name()) == "mine"


@pytest.mark.parametrize("host", ["web 1.example.com", "", "web\n2"])
def test_client_name_and_host_agree_whatever_the_host_name(
    host: str, fresh_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before issue 10 the host of the stats snapshot and the host in the default client
    # name were computed apart: one replaced whitespace, the other fell back to localhost.
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    with override_settings(REDIS_POOL={"url": fresh_server.url}):
        get_redis().ping()
        stats = pool_stats()
    assert stats.client_name.split(":")[3] == stats.host
    assert stats.host
    assert not any(c.isspace() for c in stats.host)


def test_one_masking_rule_for_foreign_text() -> None:
    # fleet.scrub and the cluster error used two rules: scrub let a password that happens
    # to be "default" through, and neither masked ssl_password.
    config = config_of({"url": "rediss://default:default@h/0", "ssl_password": "keypass"})
    text = "WRONGPASS default / default / keypass"
    assert scrub(text, config) == redact(text, config.kwargs)
    assert "keypass" not in scrub(text, config)
    assert scrub(text, config).count(MASK) == 3  # the password twice, the key's password
    named = config_of({"url": "redis://default:s3cret@h/0"})
    assert scrub("user default: s3cret", named) == f"user default: {MASK}"
