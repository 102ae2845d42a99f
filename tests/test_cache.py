"""redis_pool.cache.RedisCache: Django's cache API on the alias's pool (real redis-server)."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache, CacheKeyWarning
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from redis_pool import get_pool, get_redis, pool_stats
from redis_pool.cache import RedisCache
from tests.redis_server import RedisServer

DB1 = f"{settings.REDIS_URL[:-2]}/1"


def cache_on(alias: str = "default", **params: Any) -> RedisCache:
    return RedisCache(alias, params)


@pytest.fixture
def cache() -> RedisCache:
    return cache_on(KEY_PREFIX="t")


def test_get_set_add_delete(cache: RedisCache) -> None:
    assert cache.get("a") is None
    assert cache.get("a", "dflt") == "dflt"
    cache.set("a", {"x": [1, 2]})
    assert cache.get("a") == {"x": [1, 2]}
    assert cache.add("a", 1) is False
    assert cache.add("b", True) is True
    assert cache.get("b") is True  # a bool is pickled, not stored as 1
    assert cache.has_key("b")
    assert cache.delete("b") is True
    assert cache.delete("b") is False
    assert not cache.has_key("b")


def test_timeouts_follow_djangos_rules(cache: RedisCache) -> None:
    raw = get_redis()
    cache.set("p", 1, timeout=None)
    assert raw.ttl(cache.make_key("p")) == -1
    cache.set("t", 1, timeout=100.7)
    assert 99 <= raw.ttl(cache.make_key("t")) <= 100
    cache.set("t", 1, timeout=0)  # zero and negative delete
    assert not cache.has_key("t")
    cache.set("t", 1)
    cache.set("t", 1, timeout=-1)
    assert not cache.has_key("t")
    assert cache.add("z", 1, timeout=0) is True
    assert not cache.has_key("z")
    cache.set("z", 1)
    assert cache.add("z", 2, timeout=0) is False
    assert cache.get("z") == 1
    assert raw.ttl(cache.make_key("z")) == 300  # TIMEOUT default


def test_touch(cache: RedisCache) -> None:
    raw = get_redis()
    assert cache.touch("nope") is False
    cache.set("k", 1, timeout=None)
    assert cache.touch("k", None) is True  # exists without a TTL: still "touched"
    assert cache.touch("k", 50) is True
    assert 49 <= raw.ttl(cache.make_key("k")) <= 50
    assert cache.touch("k", None) is True
    assert raw.ttl(cache.make_key("k")) == -1


def test_incr_decr(cache: RedisCache) -> None:
    with pytest.raises(ValueError, match="not found"):
        cache.incr("n")
    assert not cache.has_key("n")  # a failed incr creates nothing
    cache.set("n", 10, timeout=60)
    assert cache.incr("n") == 11
    assert cache.incr("n", 5) == 16
    assert cache.decr("n", 20) == -4
    assert cache.get("n") == -4
    assert get_redis().ttl(cache.make_key("n")) > 0  # the TTL is kept
    assert cache.incr("fresh", 3, ignore_key_check=True) == 3


def test_incr_reloads_a_flushed_script(cache: RedisCache) -> None:
    cache.set("n", 1)
    assert cache.incr("n") == 2
    get_redis().script_flush()  # as after a server restart
    assert cache.incr("n") == 3


def test_many(cache: RedisCache) -> None:
    assert cache.get_many([]) == {}
    assert cache.set_many({}) == []
    cache.set_many({"a": 1, "b": "two", "c": [3]}, timeout=60)
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": "two", "c": [3]}
    assert 59 <= get_redis().ttl(cache.make_key("b")) <= 60
    cache.set_many({"p": 1}, timeout=None)
    assert get_redis().ttl(cache.make_key("p")) == -1
    cache.set_many({"p": 1, "a": 2}, timeout=0)
    assert cache.get_many(["p", "a", "b"]) == {"b": "two"}
    cache.delete_many(["b", "c"])
    cache.delete_many([])
    assert cache.get_many(["b", "c"]) == {}


def test_versions_and_prefix_make_djangos_keys(cache: RedisCache) -> None:
    cache.set("k", "v", version=3)
    assert get_redis().exists("t:3:k")
    assert cache.get("k") is None
    assert cache.get("k", version=3) == "v"
    assert cache.incr_version("k", version=3) == 4
    assert cache.get("k", version=4) == "v"


def test_one_round_trip_per_operation(redis_server: RedisServer, cache: RedisCache) -> None:
    """incr, add, get_many, set_many, delete_many: one round trip each (MONITOR-free: the
    server's commands_processed and the pool's checkouts count them)."""
    cache.set("n", 1)
    cache.get("n")  # the connection is open and the script loaded
    cache.incr("n")
    ops = [
        lambda: cache.incr("n"),
        lambda: cache.add("new", 1),
        lambda: cache.get_many([f"k{i}" for i in range(10)]),
        lambda: cache.set_many({f"k{i}": i for i in range(10)}, timeout=30),
        lambda: cache.delete_many([f"k{i}" for i in range(10)]),
    ]
    for op in ops:
        before = pool_stats().checkouts
        op()
        assert pool_stats().checkouts == before + 1


def test_cache_traffic_is_the_aliases_checkouts(cache: RedisCache) -> None:
    before = pool_stats("default").checkouts
    for i in range(20):
        cache.set(f"k{i}", i)
        cache.get(f"k{i}")
    assert pool_stats("default").checkouts >= before + 40
    assert get_pool("default").stats().checkouts == pool_stats("default").checkouts


def test_close_keeps_the_pool(cache: RedisCache) -> None:
    cache.set("k", 1)
    opened = pool_stats().open
    assert opened >= 1
    cache.close()
    assert pool_stats().open == opened
    assert pool_stats().closed == 0
    assert cache.get("k") == 1


def test_caches_handler_and_get_redis_share_one_pool() -> None:
    with override_settings(
        CACHES={"default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "other"}}
    ):
        caches["default"].set("k", "v")
        assert isinstance(caches["default"], RedisCache)
        assert get_redis("other").exists(":1:k")
        assert get_pool("other").stats().checkouts >= 1


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        ("redis://127.0.0.1:6379/0", {}, "must be the name of one REDIS_POOL alias"),
        ("a;b", {}, "must be the name of one REDIS_POOL alias"),
        ("missing", {}, "No Redis pool alias 'missing'"),
        ("default", {"max_connections": 2}, r"belong in REDIS_POOL\['default'\]"),
        ("default", {"CONNECTION_POOL_KWARGS": {}}, "configures the connection"),
        ("default", {"SERIALIZER": "x"}, "is not supported"),
        ("default", {"COLOUR": 1}, "unknown OPTIONS 'COLOUR'"),
        ("default", {"IGNORE_EXCEPTIONS": "yes"}, "must be True or False"),
        ("default", {"CLEAR": "all"}, "must be 'prefix'"),
        ("default", [], "OPTIONS must be a dict"),
        ("default", {"MAX_ENTRIES": 30}, "maxmemory-policy"),
    ],
)
def test_bad_settings_are_refused(location: str, options: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        RedisCache(location, {"OPTIONS": options})


def test_bad_settings_through_caches() -> None:
    bad = {"default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "nope"}}
    with override_settings(CACHES=bad), pytest.raises(ImproperlyConfigured, match="nope"):
        caches["default"]


# -- data compatibility with Django's own backend -------------------------------------------


@pytest.fixture
def django_cache() -> Iterator[DjangoRedisCache]:
    theirs = DjangoRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "t"})
    yield theirs
    for pool in theirs._cache._pools.values():
        pool.disconnect()


VALUES: list[Any] = [1, -7, 2**70, 1.5, True, None, "text", b"\x80bytes", {"d": [1, (2, 3)]}]


def test_django_reads_ours_and_ours_reads_djangos(
    cache: RedisCache, django_cache: DjangoRedisCache
) -> None:
    for i, value in enumerate(VALUES):
        cache.set(f"ours{i}", value, timeout=60)
        django_cache.set(f"theirs{i}", value, timeout=60)
    for i, value in enumerate(VALUES):
        assert django_cache.get(f"ours{i}", "missing") == value
        assert cache.get(f"theirs{i}", "missing") == value
    ours = cache.get_many([f"theirs{i}" for i in range(len(VALUES))])
    assert list(ours.values()) == VALUES
    # Same bytes on the server for the same value.
    raw = get_redis()
    for i in range(len(VALUES)):
        assert raw.get(f"t:1:ours{i}") == raw.get(f"t:1:theirs{i}")


def test_incr_across_backends(cache: RedisCache, django_cache: DjangoRedisCache) -> None:
    cache.set("n", 5)
    assert django_cache.incr("n", 2) == 7
    assert cache.incr("n", 3) == 10
    assert django_cache.get("n") == 10
    django_cache.set_many({"a": 1, "b": "x"}, timeout=30)
    assert cache.incr("a") == 2
    assert cache.get_many(["a", "b"]) == {"a": 2, "b": "x"}
    cache.set_many({"c": 40, "d": {"k": 1}}, timeout=30)
    assert django_cache.decr("c") == 39
    assert django_cache.get_many(["c", "d"]) == {"c": 39, "d": {"k": 1}}


def test_values_are_not_decoded_on_a_decoding_alias() -> None:
    decoding = {
        "default": {"url": settings.REDIS_URL},
        "decoded": {"url": DB1, "decode_responses": True},
    }
    with override_settings(REDIS_POOL=decoding):
        assert isinstance(get_redis("decoded").echo("x"), str)  # the alias does decode
        cache = cache_on("decoded")
        for i, value in enumerate(VALUES):
            cache.set(f"v{i}", value)
        for i, value in enumerate(VALUES):
            assert cache.get(f"v{i}") == value
        assert list(cache.get_many([f"v{i}" for i in range(len(VALUES))]).values()) == VALUES
        cache.set("n", 1)
        assert cache.incr("n") == 2
        assert list(cache.iter_keys("v1*")) == ["v1"]
        # Only one pool serves the alias, decoding or not.
        assert pool_stats("decoded").max_connections == get_pool("decoded").max_connections


def test_async_values_are_not_decoded_on_a_decoding_alias() -> None:
    async def scenario() -> None:
        decoding = {
            "default": {"url": settings.REDIS_URL},
            "decoded": {"url": DB1, "decode_responses": True},
        }
        with override_settings(REDIS_POOL=decoding):
            cache = cache_on("decoded")
            await cache.aset("p", {"x": b"\xff"})
            await cache.aset_many({"a": 1.5, "b": 2})
            assert await cache.aget("p") == {"x": b"\xff"}
            assert await cache.aget_many(["a", "b"]) == {"a": 1.5, "b": 2}

    asyncio.run(scenario())


# -- async: native, on the loop's pool --------------------------------------------------------


def test_async_api_uses_the_loops_pool_not_a_thread(cache: RedisCache) -> None:
    async def scenario() -> None:
        sync_before = pool_stats().checkouts
        assert await cache.aget("a") is None
        await cache.aset("a", [1])
        assert await cache.aget("a") == [1]
        assert await cache.aadd("a", 2) is False
        assert await cache.aadd("b", 2, timeout=30) is True
        with pytest.raises(ValueError, match="not found"):
            await cache.aincr("nope")
        assert await cache.aincr("b", 5) == 7
        assert await cache.adecr("b") == 6
        await cache.aset_many({"c": 3, "d": "4"}, timeout=30)
        assert await cache.aget_many(["a", "b", "c", "d", "e"]) == {
            "a": [1],
            "b": 6,
            "c": 3,
            "d": "4",
        }
        assert await cache.ahas_key("c")
        assert await cache.atouch("c", None) is True
        assert await cache.adelete("c") is True
        await cache.adelete_many(["a", "d"])
        assert await cache.aget_many(["a", "c", "d"]) == {}
        assert await cache.aget_or_set("g", lambda: "made") == "made"
        assert await cache.aget_or_set("g", "other") == "made"
        await cache.aclear()
        assert not await cache.ahas_key("b")
        # Nothing above went through the sync pool (sync_to_async would have).
        assert pool_stats().checkouts == sync_before
        await cache.aclose()

    asyncio.run(scenario())


def test_async_incr_reloads_a_flushed_script(cache: RedisCache) -> None:
    async def scenario() -> None:
        await cache.aset("n", 1)
        get_redis().script_flush()
        assert await cache.aincr("n") == 2

    asyncio.run(scenario())


# -- clear() ---------------------------------------------------------------------------------


def test_clear_deletes_only_this_caches_keys(cache: RedisCache) -> None:
    raw = get_redis()
    raw.set("redis_pool:stats:fake", "published")  # as the fleet's stats
    raw.set("other:1:k", "another prefix")
    raw.set("tx:1:k", "a prefix that starts the same")
    for i in range(2500):  # more than one SCAN batch
        raw.set(f"t:1:k{i}", i)
    cache.set("v2", 1, version=2)
    published = set(raw.keys("redis_pool:stats:*"))  # the real publisher's, if it ran
    cache.clear()
    assert set(raw.keys()) == {b"other:1:k", b"tx:1:k"} | published
    assert raw.get("redis_pool:stats:fake") == b"published"


def test_clear_with_glob_characters_in_the_prefix() -> None:
    cache = cache_on(KEY_PREFIX="a*[b]")
    get_redis().set("aX[b]:1:k", 1)
    get_redis().set("ab:1:k", 1)
    cache.set("k", 1)
    cache.clear()
    assert set(get_redis().keys("a*")) == {b"aX[b]:1:k", b"ab:1:k"}


def test_clear_without_prefix_keeps_other_keys() -> None:
    cache = cache_on()
    get_redis().set("redis_pool:stats:fake", 1)
    get_redis().set("k", 1)
    cache.set("k", 1)
    cache.clear()
    assert not cache.has_key("k")
    assert get_redis().exists("redis_pool:stats:fake", "k") == 2


def test_clear_flushdb_is_djangos(cache: RedisCache) -> None:
    get_redis().set("anything", 1)
    cache_on(OPTIONS={"CLEAR": "flushdb"}).clear()
    assert get_redis().dbsize() == 0


# -- Redis down ----------------------------------------------------------------------------------


def _down_settings(server: RedisServer) -> dict[str, Any]:
    return {
        "default": {"url": settings.REDIS_URL},
        "down": {"url": server.url, "socket_connect_timeout": 0.3, "socket_timeout": 0.3},
    }


def test_redis_down_raises_promptly(fresh_server: RedisServer) -> None:
    fresh_server.stop()
    with override_settings(REDIS_POOL=_down_settings(fresh_server)):
        cache = cache_on("down")
        with pytest.raises(redis.ConnectionError) as from_get_redis:
            get_redis("down").get("x")
        start = time.monotonic()
        with pytest.raises(redis.ConnectionError) as from_cache:
            cache.get("x")
        assert time.monotonic() - start < 3
        assert type(from_cache.value) is type(from_get_redis.value)


def test_ignore_exceptions_against_a_stopped_server(
    fresh_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_server.stop()
    with override_settings(REDIS_POOL=_down_settings(fresh_server)):
        cache = cache_on("down", OPTIONS={"IGNORE_EXCEPTIONS": True})
        assert cache.get("x", "dflt") == "dflt"
        assert cache.get_many(["x", "y"]) == {}
        assert cache.set("x", 1) is None
        assert cache.add("x", 1) is False
        assert cache.has_key("x") is False
        assert cache.delete("x") is False
        assert cache.incr("x") is None
        assert cache.set_many({"x": 1}, timeout=5) == []
        cache.delete_many(["x"])
        cache.clear()
        assert cache.get_or_set("x", 2) == 2
    assert "IGNORE_EXCEPTIONS" in caplog.text
    assert fresh_server.password is None or fresh_server.password not in caplog.text


def test_async_ignore_exceptions_against_a_stopped_server(
    fresh_server: RedisServer,
) -> None:
    async def scenario() -> None:
        fresh_server.stop()
        with override_settings(REDIS_POOL=_down_settings(fresh_server)):
            cache = cache_on("down", OPTIONS={"IGNORE_EXCEPTIONS": True})
            assert await cache.aget("x", 3) == 3
            assert await cache.aget_many(["x"]) == {}
            await cache.aclear()
            loud = cache_on("down")
            with pytest.raises(redis.ConnectionError):
                await loud.aget("x")

    asyncio.run(scenario())


def test_ignore_exceptions_does_not_hide_bugs(cache: RedisCache) -> None:
    quiet = cache_on(KEY_PREFIX="t", OPTIONS={"IGNORE_EXCEPTIONS": True})
    quiet.set("pickled", [1])
    with pytest.raises(redis.ResponseError):
        quiet.incr("pickled")


# -- django-redis compatibility ----------------------------------------------------------------


def test_get_redis_connection_drop_ins() -> None:
    import django_redis

    from redis_pool.compat import get_redis_connection

    with override_settings(
        CACHES={"default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "other"}}
    ):
        assert get_redis_connection() is get_redis("other")
        assert django_redis.get_redis_connection("default") is get_redis("other")
    with (
        override_settings(
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        ),
        pytest.raises(NotImplementedError),
    ):
        get_redis_connection()


def test_django_redis_extras(cache: RedisCache) -> None:
    assert cache.ttl("missing") == 0
    cache.set("k", 1, timeout=None)
    assert cache.ttl("k") is None
    assert cache.expire("k", 100) is True
    assert 99 <= cache.ttl("k") <= 100  # type: ignore[operator]
    assert 98_000 < cache.pttl("k") <= 100_000  # type: ignore[operator]
    assert cache.persist("k") is True
    assert cache.ttl("k") is None
    assert cache.pexpire("k", 50_000) is True
    assert cache.expire_at("k", int(time.time()) + 30) is True
    assert 28 <= cache.ttl("k") <= 30  # type: ignore[operator]
    cache.set_many({"foo_1": 1, "foo_2": 2, "bar": 3})
    assert sorted(cache.iter_keys("foo_*")) == ["foo_1", "foo_2"]
    assert sorted(cache.keys("*")) == ["bar", "foo_1", "foo_2", "k"]
    assert cache.delete_pattern("foo_*") == 2
    assert cache.get_many(["foo_1", "bar"]) == {"bar": 3}
    assert cache.set("bar", 4, nx=True) is False
    assert cache.set("baz", 4, nx=True) is True
    with cache.lock("L", timeout=5):
        assert get_redis().exists("t:1:L")
    assert not get_redis().exists("t:1:L")


def test_sessions_on_the_pool() -> None:
    from django.contrib.sessions.backends.cache import SessionStore

    with override_settings(
        CACHES={"default": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "other"}},
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
    ):
        before = pool_stats("other").checkouts
        session = SessionStore()
        session["count"] = 1
        session.save()
        loaded = SessionStore(session_key=session.session_key)
        assert loaded["count"] == 1
        assert pool_stats("other").checkouts > before


def test_asyncio_run_leaves_no_connections(cache: RedisCache) -> None:
    async def work() -> Any:
        await cache.aset("k", 1)
        return await cache.aget("k")

    assert asyncio.run(work()) == 1


def test_set_nx_with_a_zero_timeout_leaves_an_existing_key(cache: RedisCache) -> None:
    cache.set("k", 222, timeout=None)
    assert cache.set("k", 1, timeout=-1, nx=True) is False
    assert cache.get("k") == 222
    assert cache.set("absent", 1, timeout=0, nx=True) is True
    assert not cache.has_key("absent")


def test_delete_many_counts(cache: RedisCache) -> None:
    cache.set_many({"a": 1, "b": 2})
    assert cache.delete_many(key for key in ["a", "b", "c"]) == 2
    assert cache.delete_many(["a"]) == 0
    assert cache.delete_many([]) is None


# -- manage.py check ---------------------------------------------------------------------------


def test_manage_py_check_reports_bad_cache_settings() -> None:
    """Django's own cache checks build every cache, so a refused setting stops
    ``manage.py check`` with the backend's message (no separate check needed)."""
    from django.core import checks

    ours = "redis_pool.cache.RedisCache"
    bad = {"default": {"BACKEND": ours, "LOCATION": "default", "OPTIONS": {"db": 3}}}
    with override_settings(CACHES=bad), pytest.raises(ImproperlyConfigured, match="OPTIONS"):
        checks.run_checks(tags=["caches"])
    good = {"default": {"BACKEND": ours, "LOCATION": "default", "KEY_PREFIX": "p"}}
    with override_settings(CACHES=good):
        assert checks.run_checks(tags=["caches"]) == []


def test_django_redis_extras_take_timedeltas_datetimes_and_a_prefix(cache: RedisCache) -> None:
    import datetime

    from django.core.cache.backends.base import DEFAULT_TIMEOUT

    cache.set("k", 1, timeout=None)
    assert cache.expire("k", datetime.timedelta(seconds=40)) is True
    assert 38 <= cache.ttl("k") <= 40  # type: ignore[operator]
    assert cache.expire("k", DEFAULT_TIMEOUT) is True
    assert 298 <= cache.ttl("k") <= 300  # type: ignore[operator]
    soon = datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(seconds=20)
    assert cache.pexpire_at("k", soon) is True
    assert 18 <= cache.ttl("k") <= 20  # type: ignore[operator]
    assert cache.pexpire("k", DEFAULT_TIMEOUT) is True
    assert cache.persist("missing") is False
    other = cache_on(KEY_PREFIX="o")
    other.set("x1", 1)
    cache.set("x1", 1)
    assert cache.delete_pattern("x*", prefix="o") == 1
    assert cache.has_key("x1")
    assert not other.has_key("x1")


def test_ignored_exceptions_can_be_silent(
    fresh_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_server.stop()
    with override_settings(REDIS_POOL=_down_settings(fresh_server)):
        cache = cache_on(
            "down", OPTIONS={"IGNORE_EXCEPTIONS": True, "LOG_IGNORED_EXCEPTIONS": False}
        )
        assert cache.get("x", 1) == 1
    assert "IGNORE_EXCEPTIONS" not in caplog.text


KEYS_TO_VALIDATE = ["clean", "with space", "tab\there", "del\x7f", "é", "x" * 246, "x" * 247]


@pytest.mark.parametrize("key", KEYS_TO_VALIDATE)
def test_key_warnings_are_djangos(cache: RedisCache, key: str) -> None:
    """The compiled-pattern check warns for exactly the keys Django's validate_key warns
    for, with Django's messages (the made key "t:1:" + 246 = 250 characters is still fine)."""
    made = cache.make_key(key)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        cache.validate_key(made)
    with warnings.catch_warnings(record=True) as djangos:
        warnings.simplefilter("always")
        BaseCache.validate_key(cache, made)
    assert [str(w.message) for w in ours] == [str(w.message) for w in djangos]
    assert all(w.category is CacheKeyWarning for w in ours)


def test_every_hot_operation_warns_on_a_bad_key(cache: RedisCache) -> None:
    calls: list[Callable[[], object]] = [
        lambda: cache.set("bad key", 1),
        lambda: cache.get("bad key"),
        lambda: cache.set("bad key", 2),
        lambda: cache.incr("bad key"),
        lambda: cache.get_many(["ok", "bad key"]),
        lambda: cache.delete("bad key"),
        lambda: asyncio.run(cache.aget("bad key")),
    ]
    for call in calls:
        with pytest.warns(CacheKeyWarning, match="bad key"):
            call()


def test_a_subclass_key_function_and_validation_are_used() -> None:
    seen: list[str] = []

    class Custom(RedisCache):
        def make_key(self, key: Any, version: int | None = None) -> str:
            return f"custom/{key}"

        def validate_key(self, key: str) -> None:
            seen.append(key)

    cache = Custom("default", {})
    cache.set("a", 5)
    assert get_redis().get("custom/a") == b"5"
    assert cache.get("a") == 5
    assert cache.incr("a") == 6
    assert cache.get_many(["a"]) == {"a": 6}
    assert cache.delete("a") is True
    assert seen == ["custom/a"] * 5


def test_sync_hot_path_and_async_plans_agree() -> None:
    """The sync get/set/delete/incr/get_many send their commands directly, the async ones
    through plans.py: the same calls give the same results, errors and TTLs."""
    raw = get_redis()

    def outcome(call: Callable[[], object]) -> object:
        try:
            return call()
        except ValueError as exc:
            return f"ValueError: {exc}".replace("'s:1:", "'X:1:").replace("'a:1:", "'X:1:")

    def sync_steps(c: RedisCache) -> list[object]:
        return [
            outcome(lambda: c.get("k", "dflt")),
            outcome(lambda: c.set("k", {"v": 1})),
            outcome(lambda: c.set("n", 5, timeout=None)),
            outcome(lambda: c.set("t", 1, timeout=50.9)),
            outcome(lambda: raw.ttl(c.make_key("t"))),
            outcome(lambda: raw.ttl(c.make_key("n"))),
            outcome(lambda: c.get("k")),
            outcome(lambda: c.incr("n", 3)),
            outcome(lambda: c.incr("absent")),
            outcome(lambda: c.get_many(["k", "n", "absent"])),
            outcome(lambda: c.get_many([])),
            outcome(lambda: c.delete("k")),
            outcome(lambda: c.delete("k")),
            outcome(lambda: c.set("n", 1, timeout=0)),
            outcome(lambda: c.get("n")),
        ]

    def async_steps(c: RedisCache) -> list[object]:
        return [
            outcome(lambda: asyncio.run(c.aget("k", "dflt"))),
            outcome(lambda: asyncio.run(c.aset("k", {"v": 1}))),
            outcome(lambda: asyncio.run(c.aset("n", 5, timeout=None))),
            outcome(lambda: asyncio.run(c.aset("t", 1, timeout=50.9))),
            outcome(lambda: raw.ttl(c.make_key("t"))),
            outcome(lambda: raw.ttl(c.make_key("n"))),
            outcome(lambda: asyncio.run(c.aget("k"))),
            outcome(lambda: asyncio.run(c.aincr("n", 3))),
            outcome(lambda: asyncio.run(c.aincr("absent"))),
            outcome(lambda: asyncio.run(c.aget_many(["k", "n", "absent"]))),
            outcome(lambda: asyncio.run(c.aget_many([]))),
            outcome(lambda: asyncio.run(c.adelete("k"))),
            outcome(lambda: asyncio.run(c.adelete("k"))),
            outcome(lambda: asyncio.run(c.aset("n", 1, timeout=0))),
            outcome(lambda: asyncio.run(c.aget("n"))),
        ]

    sync = sync_steps(cache_on(KEY_PREFIX="s"))
    assert sync == async_steps(cache_on(KEY_PREFIX="a"))
    assert sync[:5] == ["dflt", None, None, None, 50]
    assert sync[8] == "ValueError: Key 'X:1:absent' not found."
