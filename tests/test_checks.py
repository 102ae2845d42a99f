"""One test per check ID (IDs are never reused), plus the rule for the two forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings

from redis_pool.checks import check_settings
from redis_pool.config.alias import parse

SECRET = "s3cr3t-pa55"


def run(value: Any, **extra: Any) -> list[tuple[str, str, str | None]]:
    with override_settings(REDIS_POOL=value, **extra):
        return [(m.id or "", m.msg, m.hint) for m in check_settings()]


def test_valid_settings_pass(redis_server: Any) -> None:
    assert run({"default": {"url": "redis://127.0.0.1:6379/0"}}) == []


def test_issue_example_works_as_written() -> None:
    example = {
        "host": "localhost",
        "port": 6379,
        "db": 0,
        "max_connections": 50,
        "decode_responses": True,
        "socket_timeout": 5.0,
        "socket_connect_timeout": 5.0,
        "retry_on_timeout": True,
    }
    assert run(example) == []
    config = parse(example).configs["default"]
    assert config.max_connections == 50
    assert config.kwargs["host"] == "localhost"
    assert config.kwargs["retry_on_timeout"] is True


def test_e001_not_a_dict() -> None:
    assert run("redis://localhost") == [
        (
            "redis_pool.E001",
            "REDIS_POOL must be a dict, got str 'redis://localhost'.",
            "Use {'url': 'redis://...'} for one pool, or {'alias': {...}} for several.",
        )
    ]


def test_e002_alias_value_not_a_dict() -> None:
    assert run({"default": {}, "cache": "redis://localhost/1"}) == [
        (
            "redis_pool.E002",
            "REDIS_POOL['cache'] must be a dict of connection options, got str "
            "'redis://localhost/1'.",
            "In the several-pools form every value is a dict of options for that alias.",
        )
    ]


def test_e002_suggests_a_misspelt_single_form_key() -> None:
    [(cid, _msg, hint)] = run({"hots": "localhost"}, REDIS_POOL_MIDDLEWARE_ALIAS="hots")
    assert cid == "redis_pool.E002"
    assert hint == "Did you mean 'host'?"


def test_e003_unknown_key_with_did_you_mean() -> None:
    assert run({"default": {"max_conections": 10}}) == [
        (
            "redis_pool.E003",
            "REDIS_POOL['default'] has an unknown key 'max_conections'.",
            "Did you mean 'max_connections'?",
        )
    ]


def test_e003_reserved_pool_plumbing() -> None:
    [(cid, msg, hint)] = run({"default": {"queue_class": 3}})
    assert cid == "redis_pool.E003"
    assert msg == "REDIS_POOL['default'] has an unknown key 'queue_class'."
    assert hint == "redis_pool chooses this itself; use 'pool_timeout' to set the wait."


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("port", "6379", "an integer"),
        ("db", True, "an integer"),
        ("socket_timeout", "5", "a positive number of seconds of at most 31536000 or None"),
        ("socket_timeout", -1, "a positive number of seconds of at most 31536000 or None"),
        ("pool_timeout", float("inf"), "a positive number of seconds of at most 31536000 or None"),
        ("decode_responses", "yes", "True or False"),
        ("host", 127, "a string"),
    ],
)
def test_e004_wrong_type(key: str, value: Any, expected: str) -> None:
    assert run({"default": {key: value}}) == [
        (
            "redis_pool.E004",
            f"REDIS_POOL['default'][{key!r}] must be {expected}, got {value!r}.",
            None,
        )
    ]


def test_e004_masks_a_password_of_the_wrong_type() -> None:
    [(cid, msg, _hint)] = run({"default": {"password": 12345}})
    assert cid == "redis_pool.E004"
    assert "12345" not in msg
    assert msg == "REDIS_POOL['default']['password'] must be a string or None, got '********'."


def test_e004_negative_db() -> None:
    assert run({"default": {"db": -1}}) == [
        (
            "redis_pool.E004",
            "REDIS_POOL['default']['db'] must be a database number from 0 to 2147483647, got -1.",
            None,
        )
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{SECRET}@localhost:6379/0",
        f"redis://user:{SECRET}@localhost:notaport/0",
        f"redis://user:{SECRET}@localhost:6379/zero",
    ],
)
def test_e005_malformed_url_masks_credentials(url: str) -> None:
    [(cid, msg, hint)] = run({"default": {"url": url}})
    assert cid == "redis_pool.E005"
    assert msg.startswith("REDIS_POOL['default']['url'] is not a valid Redis URL: '")
    assert "********@localhost" in msg
    assert SECRET not in msg
    assert "user" not in msg
    assert hint is not None
    assert "rediss://" in hint


@pytest.mark.parametrize("value", [0, -5, 2**31])
def test_e006_max_connections_out_of_range(value: int) -> None:
    assert run({"default": {"max_connections": value}}) == [
        (
            "redis_pool.E006",
            "REDIS_POOL['default']['max_connections'] must be a positive integer of at most "
            f"100,000, got {value}.",
            None,
        )
    ]


def test_e007_key_set_in_url_and_as_key() -> None:
    assert run(
        {"default": {"url": f"redis://:{SECRET}@localhost/2", "db": 3, "password": "x"}}
    ) == [
        (
            "redis_pool.E007",
            "REDIS_POOL['default'] sets 'password' both in 'url' and as a key "
            "(url gives '********', key gives '********').",
            "Set it in one place only.",
        ),
        (
            "redis_pool.E007",
            "REDIS_POOL['default'] sets 'db' both in 'url' and as a key "
            "(url gives 2, key gives 3).",
            "Set it in one place only.",
        ),
    ]


def test_e008_key_not_for_this_transport() -> None:
    [(cid, msg, _hint)] = run({"default": {"url": "redis://localhost", "ssl_ca_certs": "/ca"}})
    assert cid == "redis_pool.E008"
    assert msg == "REDIS_POOL['default']['ssl_ca_certs'] does not apply to a tcp connection."


def test_e008_tls_keys_accepted_with_rediss() -> None:
    assert run({"default": {"url": "rediss://localhost", "ssl_ca_certs": "/ca"}}) == []


def test_e009_bad_alias_name() -> None:
    assert run({"my cache": {}}, REDIS_POOL_MIDDLEWARE_ALIAS="my cache") == [
        (
            "redis_pool.E009",
            "REDIS_POOL alias 'my cache' is not a valid name.",
            "Use letters, digits, '_', '-' and '.' only.",
        )
    ]


def test_e010_middleware_alias_unknown() -> None:
    assert run({"default": {}}, REDIS_POOL_MIDDLEWARE_ALIAS="sessions") == [
        (
            "redis_pool.E010",
            "REDIS_POOL_MIDDLEWARE_ALIAS names the alias 'sessions', which REDIS_POOL does not "
            "define; configured: 'default'.",
            None,
        )
    ]


def test_w001_unbounded() -> None:
    [(cid, msg, _hint)] = run({"default": {"max_connections": 50_000}})
    assert cid == "redis_pool.W001"
    assert msg == "REDIS_POOL['default']['max_connections'] is 50000: effectively unbounded."


def test_w002_no_timeout() -> None:
    assert [m[:2] for m in run({"default": {"socket_timeout": None}})] == [
        (
            "redis_pool.W002",
            "REDIS_POOL['default']['socket_timeout'] is None: a slow or unreachable Redis "
            "hangs the caller.",
        )
    ]


def test_w003_no_default_alias() -> None:
    assert run({"cache": {}, "queue": {}}, REDIS_POOL_MIDDLEWARE_ALIAS="cache") == [
        (
            "redis_pool.W003",
            "REDIS_POOL has no 'default' alias, so get_redis() without an argument fails; "
            "aliases: cache, queue.",
            None,
        )
    ]


def test_levels() -> None:
    with override_settings(REDIS_POOL={"default": {"max_connections": 0, "socket_timeout": None}}):
        [message] = check_settings()
    assert isinstance(message, Error)
    with override_settings(REDIS_POOL={"default": {"socket_timeout": None}}):
        [message] = check_settings()
    assert isinstance(message, Warning)


def test_forms_rule() -> None:
    single = parse({"url": "redis://localhost/3"})
    assert list(single.configs) == ["default"]
    several = parse({"default": {"url": "redis://localhost/3"}, "sessions": {"db": 4}})
    assert list(several.configs) == ["default", "sessions"]
    assert several.configs["sessions"].kwargs["db"] == 4
    assert list(parse(None).configs) == ["default"]
    assert list(parse({}).configs) == ["default"]


def test_checks_never_open_a_socket() -> None:
    # Nothing listens on port 1; a check that connected would fail or hang.
    assert run({"default": {"url": "redis://127.0.0.1:1/0"}}) == []


def test_registered_with_django() -> None:
    from django.core import checks

    with override_settings(REDIS_POOL={"default": {"max_connections": 0}}):
        ids = [m.id for m in checks.run_checks(tags=["redis_pool"])]
    assert ids == ["redis_pool.E006"]


def test_e003_unknown_url_query_parameter() -> None:
    assert run({"default": {"url": "redis://localhost/0?socket_timout=3"}}) == [
        (
            "redis_pool.E003",
            "REDIS_POOL['default']['url'] has an unknown query parameter 'socket_timout'.",
            "Did you mean 'socket_timeout'?",
        )
    ]


def test_e004_connection_class_not_a_class() -> None:
    assert run({"default": {"connection_class": "redis.Connection"}}) == [
        (
            "redis_pool.E004",
            "REDIS_POOL['default']['connection_class'] must be a redis-py connection class, "
            "got 'redis.Connection'.",
            None,
        )
    ]


def test_e011_value_redis_py_refuses() -> None:
    [(cid, msg, hint)] = run(
        {"default": {"password": SECRET, "maint_notifications_config": {"enabled": True}}}
    )
    assert cid == "redis_pool.E011"
    assert msg.startswith("REDIS_POOL['default'] is refused by redis-py: ")
    assert SECRET not in msg
    assert hint == "A value has the wrong type or shape for redis-py's ConnectionPool."


@pytest.mark.parametrize("port", [0, 70000])
def test_e004_port_out_of_range(port: int) -> None:
    assert run({"default": {"port": port}}) == [
        (
            "redis_pool.E004",
            f"REDIS_POOL['default']['port'] must be between 1 and 65535, got {port}.",
            None,
        )
    ]


# -- issue 9, items 8-11 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("socket_timeout=-1", "-1.0"),
        ("socket_timeout=0", "0.0"),
        ("socket_timeout=nan", "nan"),
        ("socket_connect_timeout=inf", "inf"),
        ("socket_timeout=1e10", "10000000000.0"),
    ],
)
def test_e004_url_query_parameter_checked_like_a_key(query: str, shown: str) -> None:
    key = query.split("=")[0]
    assert run({"default": {"url": f"redis://localhost/0?{query}"}}) == [
        (
            "redis_pool.E004",
            f"REDIS_POOL['default']['url'] query parameter {key!r} must be a positive number "
            f"of seconds of at most 31536000 or None, got {shown}.",
            None,
        )
    ]


@pytest.mark.parametrize("key", ["socket_timeout", "socket_connect_timeout", "pool_timeout"])
def test_e004_huge_finite_timeout(key: str) -> None:
    assert run({"default": {key: 1e10}}) == [
        (
            "redis_pool.E004",
            f"REDIS_POOL['default'][{key!r}] must be a positive number of seconds of at most "
            "31536000 or None, got 10000000000.0.",
            None,
        )
    ]


def test_every_problem_reported_at_once() -> None:
    assert [m[0] for m in run({"hots": "x", "max_connections": 0})] == [
        "redis_pool.E003",
        "redis_pool.E006",
    ]
    several = run({"default": {"port": "x", "db": -1, "max_connections": 0, "retry": "no"}})
    assert sorted(m[0] for m in several) == ["redis_pool.E004"] * 3 + ["redis_pool.E006"]


def test_transport_problems_reported_beside_value_problems() -> None:
    found = run({"default": {"max_connections": 0, "ssl_ca_certs": "/ca", "hots": 1}})
    assert [m[0] for m in found] == ["redis_pool.E003", "redis_pool.E006", "redis_pool.E008"]


def test_e010_reported_beside_other_problems() -> None:
    ids = [m[0] for m in run({"default": {"db": -1}}, REDIS_POOL_MIDDLEWARE_ALIAS="sessions")]
    assert ids == ["redis_pool.E004", "redis_pool.E010"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("retry", "no", "a redis.retry.Retry object or None"),
        ("host", "", "a non-blank host name without NUL characters"),
        ("host", "   ", "a non-blank host name without NUL characters"),
        ("host", "local\x00host", "a non-blank host name without NUL characters"),
        ("db", 10**30, "a database number from 0 to 2147483647"),
        ("health_check_interval", -1, "an integer of at least 0"),
    ],
)
def test_e004_bad_values_name_alias_key_and_value(key: str, value: Any, expected: str) -> None:
    assert run({"default": {}, "cache": {key: value}}) == [
        (
            "redis_pool.E004",
            f"REDIS_POOL['cache'][{key!r}] must be {expected}, got {value!r}.",
            None,
        ),
    ]


def test_e005_url_port_zero() -> None:
    [(cid, msg, _hint)] = run({"default": {"url": f"redis://:{SECRET}@localhost:0/0"}})
    assert cid == "redis_pool.E005"
    assert msg == (
        "REDIS_POOL['default']['url'] is not a valid Redis URL: 'redis://********@localhost:0/0' "
        "(port 0 is not a port: use 1-65535, or leave it out for 6379)."
    )


def test_e009_alias_name_must_match_whole_string() -> None:
    assert run({"default": {}, "default\n": {}}) == [
        (
            "redis_pool.E009",
            "REDIS_POOL alias 'default\\n' is not a valid name.",
            "Use letters, digits, '_', '-' and '.' only.",
        )
    ]


def test_e003_timeout_points_to_socket_and_pool_timeout() -> None:
    [(cid, msg, hint)] = run({"default": {"timeout": 5}})
    assert cid == "redis_pool.E003"
    assert msg == "REDIS_POOL['default'] has an unknown key 'timeout' (got 5)."
    assert hint == (
        "For how long one command may take, use 'socket_timeout': 5; for how long to wait "
        "for a free connection, 'pool_timeout': 5."
    )


def test_e001_get_redis_raises_improperly_configured() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from redis_pool import get_redis

    with override_settings(REDIS_POOL=["redis://localhost"]):
        with pytest.raises(ImproperlyConfigured, match="REDIS_POOL must be a dict"):
            get_redis()
        with pytest.raises(ImproperlyConfigured, match="REDIS_POOL must be a dict"):
            get_redis("cache")


def test_w004_credential_in_url_with_debug() -> None:
    value = {"default": {"url": f"redis://:{SECRET}@localhost/0"}}
    assert run(value, DEBUG=False) == []
    assert run(value, DEBUG=True) == [
        (
            "redis_pool.W004",
            "REDIS_POOL['default']['url'] holds a credential, and DEBUG is on: Django's error "
            "page and diffsettings show it unmasked.",
            "Put the password in the 'password' key, read from the environment: the error page "
            "masks keys named like 'password' (diffsettings masks nothing); see "
            "docs/settings-secrets.md.",
        )
    ]
    assert run({"default": {"url": "redis://localhost/0", "password": SECRET}}, DEBUG=True) == []
