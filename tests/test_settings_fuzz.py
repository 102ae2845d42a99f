"""Property-based: any REDIS_POOL value either builds pools or yields system check errors.

Never an exception out of parsing, ``registry.load()`` (what ``ready()`` runs) or the checks,
and never a password in anything we show: check messages, hints, registry errors, reprs,
stats.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.checks import ERROR
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection

from redis_pool import AliasNotFound, get_pool, get_redis, registry
from redis_pool.checks import check_settings
from redis_pool.config.alias import parse, split_aliases
from redis_pool.config.keys import known_keys

# Generated passwords are "PW" + uppercase letters and digits, and no other generated text
# contains an uppercase letter: a password found in a message can only be a leak.
PLAIN = string.ascii_lowercase + string.digits + "_-.:/ "
SECRET_CHARS = string.ascii_uppercase + string.digits
# Characters that must be percent-encoded inside a URL's userinfo.
RESERVED = "@:/?#%"

ROOT_DIR = Path(__file__).resolve().parent.parent
KEYS = sorted(known_keys())
# conf refuses more (E006): BlockingConnectionPool pre-fills a queue with max_connections
# entries; see test_huge_max_connections_does_not_stall_startup below.
MAX_CONNECTIONS_FUZZED = 100_000

plain_text = st.text(alphabet=PLAIN, max_size=12)
junk_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    plain_text,
    st.binary(max_size=8),
    st.sampled_from([int, str, dict, Connection, SSLConnection, UnixDomainSocketConnection]),
)
junk = st.recursive(
    junk_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(plain_text, st.sampled_from(KEYS)), inner, max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def passwords(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet=SECRET_CHARS, min_size=8, max_size=14))
    extra = draw(st.text(alphabet=RESERVED, max_size=2))
    return f"PW{body}{extra}"


@st.composite
def urls(draw: st.DrawFn, password: str) -> str:
    scheme = draw(st.sampled_from(["redis", "rediss", "unix", "http", "", "redis+sentinel"]))
    query: list[tuple[str, str]] = []
    if scheme == "unix":
        netloc = ""
        path = draw(st.sampled_from(["/tmp/redis.sock", "", "/x y.sock"]))
        if draw(st.booleans()):
            query.append(("password", quote(password, safe="")))
    else:
        user = draw(st.sampled_from(["", "alice", "default"]))
        creds = f"{user}:{quote(password, safe='')}@" if draw(st.booleans()) else ""
        host = draw(
            st.sampled_from(["127.0.0.1", "localhost", "", "[::1]", "[::1", "no-such.host"])
        )
        port = draw(st.sampled_from(["", ":6379", ":0", ":70000", ":x", ":-1"]))
        netloc = f"{creds}{host}{port}"
        path = draw(st.sampled_from(["", "/", "/0", "/15", "/x", "/-1"]))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["db", "socket_timeout", "health_check_interval", "ssl"]))
        query.append(
            (key, draw(st.sampled_from(["1", "0", "x", "", "-1", "1.5", "nan", "inf", "1e10"])))
        )
    text = f"{scheme}://{netloc}{path}" if scheme else f"{netloc}{path}"
    if query:
        text += "?" + "&".join(f"{k}={v}" for k, v in query)
    return text


def sensible(key: str, password: str) -> st.SearchStrategy[Any]:
    """Values of roughly the right shape for ``key``, so parsing gets past type checks."""
    if key in ("password", "username", "ssl_password"):
        return st.just(password)
    if key == "url":
        return urls(password)
    if key == "max_connections":
        return st.one_of(st.none(), st.integers(-2, MAX_CONNECTIONS_FUZZED))
    if key in ("socket_timeout", "socket_connect_timeout", "pool_timeout"):
        return st.one_of(st.none(), st.floats(-1, 10), st.integers(-1, 10))
    if key in ("port", "db", "health_check_interval", "protocol", "socket_read_size"):
        return st.integers(-1, 70_000)
    return junk


@st.composite
def alias_options(draw: st.DrawFn, password: str) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(junk)  # not even a dict
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=5, unique=True))
    options: dict[Any, Any] = {}
    for key in keys:
        value = draw(st.one_of(sensible(key, password), junk))
        if key == "max_connections" and isinstance(value, int):
            value = min(value, MAX_CONNECTIONS_FUZZED)
        options[key] = value
    for key in draw(st.lists(st.one_of(plain_text, st.integers(), st.none()), max_size=2)):
        options[key] = draw(junk)  # unknown keys, some not even strings
    return options


@st.composite
def redis_pool_values(draw: st.DrawFn) -> tuple[Any, str]:
    password = draw(passwords())
    form = draw(st.sampled_from(["single", "multi", "junk"]))
    if form == "single":
        value = draw(alias_options(password))
    elif form == "multi":
        names = st.one_of(
            st.sampled_from(["default", "cache", "jobs", "sessions"]),
            plain_text,
            st.integers(),
            st.none(),
        )
        value = draw(st.dictionaries(names, alias_options(password), max_size=3))
    else:
        value = draw(junk)
    return value, password


def _leak_free(text: str, password: str) -> bool:
    return password not in text and quote(password, safe="") not in text


@settings(
    max_examples=500,
    database=None,  # no .hypothesis/ in the shared tree; failures print their example
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=redis_pool_values())
def test_any_redis_pool_builds_pools_or_yields_check_errors(case: tuple[Any, str]) -> None:
    value, password = case
    parse(value)  # pure and total: must not raise
    aliases, _ = split_aliases(value)
    # Entering runs registry.load() through the setting_changed receiver, as ready() does.
    with override_settings(REDIS_POOL=value):
        registry.load()
        messages = check_settings()
        built = registry.aliases()
        shown = [f"{m.msg} {m.hint}" for m in messages]
        errors = [m for m in messages if m.level >= ERROR]

        unbuilt = [alias for alias in aliases if alias not in built]
        # An alias is built, or a check reports an error and get_redis() names the alias.
        for alias in unbuilt:
            assert errors, f"{alias!r} silently dropped"
        for alias in unbuilt:
            if isinstance(alias, str):
                with pytest.raises((ImproperlyConfigured, AliasNotFound)) as caught:
                    get_redis(alias)
                shown.append(str(caught.value))
        for alias in built:
            pool = get_pool(alias)
            shown += [repr(pool), repr(get_redis(alias)), json.dumps(pool.stats().as_dict())]
        shown += [m for msgs in registry._broken.values() for m in msgs]
    for text in shown:
        assert _leak_free(text, password), text


# -- bugs found by fuzzing (owner: config/ and pools.py) ---------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://:PWABCDEF/GH@127.0.0.1:6379/0",
        "redis://:PWABCDEF?GH@127.0.0.1:6379/0",
        "redis://:PWABCDEF#GH@127.0.0.1:6379/0",
    ],
)
def test_unescaped_reserved_character_in_password_is_masked(url: str) -> None:
    problems = parse({"url": url}).problems
    assert problems  # such a URL is invalid...
    for problem in problems:  # ...and the message must not show the password's characters
        assert "PWABCDEF" not in f"{problem.msg} {problem.hint}"


@pytest.mark.parametrize("url", ["redis://[::1/0", "redis://[::1/0?socket_timeout=1"])
def test_unbalanced_ipv6_bracket_is_a_check_error_not_an_exception(url: str) -> None:
    assert [p.id for p in parse({"url": url}).problems] == ["redis_pool.E005"]


def test_unknown_url_query_parameter_is_a_check_error() -> None:
    url = "redis://127.0.0.1:6379/0?foo=bar"
    with override_settings(REDIS_POOL={"url": url}):
        assert any(m.level >= ERROR for m in check_settings())


@pytest.mark.parametrize(
    "options",
    [
        {"connection_class": []},
        {"connection_class": 0.0},
        {"maint_notifications_config": {"enabled": True}},
        {"oss_cluster_maint_notifications_handler": "x"},
    ],
    ids=["class-list", "class-float", "maint-config-dict", "oss-handler-str"],
)
def test_value_the_pool_constructor_refuses_is_a_check_error(options: dict[str, Any]) -> None:
    # Which values redis-py refuses depends on its version (redis-py 7 ignores the
    # oss-handler key): whatever it does, the checks and the registry must agree.
    with override_settings(REDIS_POOL={"url": "redis://127.0.0.1:6379/0", **options}):
        refused = "default" in registry._broken
        assert refused == any(m.level >= ERROR for m in check_settings())
        assert refused or registry.get_pool("default") is not None
        if options.get("connection_class") is not None:
            assert refused  # a non-class is refused by every version


@pytest.mark.parametrize(
    "options",
    [{"socket_connect_timeout": None}, {"socket_timeout": None}, {"max_connections": 20_000}],
    ids=["W002-connect", "W002-read", "W001"],
)
def test_a_warning_alone_never_drops_the_alias(options: dict[str, Any]) -> None:
    # Found by the property above: a Problem list holding only warnings once made
    # parse_alias return no config, so the alias silently had no pool.
    with override_settings(REDIS_POOL={"url": "redis://127.0.0.1:6379/0", **options}):
        assert registry.aliases() == ["default"]
        assert [m.level < ERROR for m in check_settings()] == [True]


SLOW_START = """
import time, django
from django.conf import settings
settings.configure(INSTALLED_APPS=["redis_pool"],
                   REDIS_POOL={"url": "redis://127.0.0.1:6379/0", "max_connections": 10**9})
start = time.monotonic()
django.setup()
print(time.monotonic() - start)
"""


def test_huge_max_connections_does_not_stall_startup() -> None:
    try:
        subprocess.run(
            [sys.executable, "-c", SLOW_START],
            cwd=ROOT_DIR,
            check=True,
            capture_output=True,
            timeout=4,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("django.setup() with max_connections=10**9 ran over 4 s")
