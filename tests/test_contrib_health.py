"""redis_pool.contrib.health_check against the real django-health-check 4.x and real servers.

Each proof prints one ``EVIDENCE <name> {json}`` line (``pytest -s | grep EVIDENCE``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("health_check.base", reason="needs the [health-check] extra")

from django.test import AsyncRequestFactory, override_settings
from health_check.base import HealthCheckResult
from health_check.contrib.redis import Redis as UpstreamRedisCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView
from redis.asyncio import Redis as AsyncRedis

from redis_pool import PoolExhaustedError, get_pool, get_redis, pool_stats
from redis_pool.contrib.health_check import AsyncRedisPool, RedisPool
from tests.helpers import connections_received as received
from tests.helpers import evidence
from tests.redis_server import RedisServer

ALIAS = "probed"


@contextmanager
def alias(server: RedisServer, **options: Any) -> Iterator[None]:
    # No stats publishing: the monitor thread's own commands would blur the counts.
    config = {"url": server.url, "publish_stats": False, **options}
    with override_settings(REDIS_POOL={"default": config, ALIAS: config}):
        yield


def probe(check: RedisPool) -> HealthCheckResult:
    """One probe as django-health-check's view runs it (sync checks on an executor thread)."""
    return asyncio.run(check.get_result())


def probe_many(make: Any, count: int) -> list[HealthCheckResult]:
    """``count`` probes on one event loop, as an ASGI server runs them."""

    async def main() -> list[HealthCheckResult]:
        return [await make().get_result() for _ in range(count)]

    return asyncio.run(main())


@pytest.mark.parametrize("check_class", [RedisPool, AsyncRedisPool])
def test_healthy(redis_server: RedisServer, check_class: type[RedisPool]) -> None:
    with alias(redis_server):
        result = probe(check_class(alias=ALIAS))
    assert result.error is None
    assert result.time_taken < 1.0


@pytest.mark.parametrize("check_class", [RedisPool, AsyncRedisPool])
def test_200_probes_add_no_server_connection(
    fresh_server: RedisServer, check_class: type[RedisPool]
) -> None:
    with alias(fresh_server):
        # One probe opens the pool's connection (the async pool: on this loop).
        async def main() -> tuple[int, int, int]:
            first = await check_class(alias=ALIAS).get_result()
            assert first.error is None
            before = received(fresh_server)
            checkouts = _checkouts(check_class)
            results = [await check_class(alias=ALIAS).get_result() for _ in range(200)]
            assert all(r.error is None for r in results), [r.error for r in results]
            return before, received(fresh_server), _checkouts(check_class) - checkouts

        before, after, checkouts = asyncio.run(main())
    # The second INFO is the only new connection: the probes made none.
    assert after - before == 1
    assert checkouts == 200  # and each probe did go through the pool
    evidence(
        f"health_200_probes_{check_class.__name__}",
        probes=200,
        new_server_connections=after - before - 1,
        pool_checkouts=checkouts,
    )


def _checkouts(check_class: type[RedisPool]) -> int:
    if check_class is AsyncRedisPool:
        from redis_pool import aget_redis

        return int(aget_redis(ALIAS).connection_pool.stats().checkouts)
    return pool_stats(ALIAS).checkouts


def test_upstream_redis_check_opens_a_connection_per_probe(fresh_server: RedisServer) -> None:
    """The contrast: django-health-check's own Redis check builds a client per probe."""
    before = received(fresh_server)
    results = probe_many(
        lambda: UpstreamRedisCheck(client_factory=lambda: AsyncRedis.from_url(fresh_server.url)),
        20,
    )
    assert all(r.error is None for r in results)
    new = received(fresh_server) - before - 1
    assert new == 20
    evidence("health_upstream_check_20_probes", new_server_connections=new)


def _hold(count: int) -> list[Any]:
    pool = get_pool(ALIAS)
    return [pool.get_connection() for _ in range(count)]


def _release(held: list[Any]) -> None:
    pool = get_pool(ALIAS)
    for connection in held:
        pool.release(connection)


@pytest.mark.parametrize("pool_timeout", [0.2, None], ids=["blocking", "plain"])
def test_saturated_pool_warns_and_exhausted_pool_is_unavailable(
    redis_server: RedisServer, pool_timeout: float | None
) -> None:
    with alias(redis_server, max_connections=5, pool_timeout=pool_timeout):
        held = _hold(4)
        try:
            result = probe(RedisPool(alias=ALIAS))
            assert isinstance(result.error, ServiceWarning)
            assert "near saturation: 4 of 5 connections in use" in str(result.error)
            held += _hold(1)
            start = time.monotonic()
            result = probe(RedisPool(alias=ALIAS))
            elapsed = time.monotonic() - start
            assert isinstance(result.error, ServiceUnavailable)
            assert "exhausted: all 5 connections in use, 0 waiting" in str(result.error)
            # The probe did not queue behind the requests for pool_timeout.
            assert elapsed < 0.15
        finally:
            _release(held)
        assert probe(RedisPool(alias=ALIAS)).error is None
        # 3 of 5 is under the default 80 %; a lower threshold of the check's own warns.
        held = _hold(3)
        try:
            assert probe(RedisPool(alias=ALIAS)).error is None
            result = probe(RedisPool(alias=ALIAS, saturation=0.5))
            assert isinstance(result.error, ServiceWarning)
        finally:
            _release(held)
    evidence("health_saturation", warns_at="4/5 in use", unavailable_at="5/5 in use")


def test_async_check_reads_its_loops_pool(redis_server: RedisServer) -> None:
    from redis_pool import aget_redis

    with alias(redis_server, max_connections=5, pool_timeout=0.2):

        async def main() -> tuple[Any, Any]:
            pool = aget_redis(ALIAS).connection_pool
            held = [await pool.get_connection() for _ in range(4)]
            try:
                warned = await AsyncRedisPool(alias=ALIAS).get_result()
                held.append(await pool.get_connection())
                full = await AsyncRedisPool(alias=ALIAS).get_result()
            finally:
                for connection in held:
                    await pool.release(connection)
            return warned.error, full.error

        warned, full = asyncio.run(main())
    assert isinstance(warned, ServiceWarning)
    assert "4 of 5 connections in use" in str(warned)
    assert isinstance(full, ServiceUnavailable)
    assert "exhausted" in str(full)


def test_wait_timeouts_since_the_last_probe_warn_once(redis_server: RedisServer) -> None:
    with alias(redis_server, max_connections=2, pool_timeout=0.05):
        assert probe(RedisPool(alias=ALIAS)).error is None
        held = _hold(2)
        try:
            with pytest.raises(PoolExhaustedError):
                get_redis(ALIAS).ping()
        finally:
            _release(held)
        result = probe(RedisPool(alias=ALIAS))
        assert isinstance(result.error, ServiceWarning)
        assert "refused 1 checkout(s) since the last probe (1 wait timeouts in all)" in str(
            result.error
        )
        # Nothing new since: healthy again.
        assert probe(RedisPool(alias=ALIAS)).error is None
        held = _hold(2)
        try:
            with pytest.raises(PoolExhaustedError):
                get_redis(ALIAS).ping()  # refused: not probed before the settings change
        finally:
            _release(held)
    # New settings, a new pool with counters of its own: its first probe starts from zero.
    with alias(redis_server, max_connections=3, pool_timeout=0.05):
        assert probe(RedisPool(alias=ALIAS)).error is None


@pytest.mark.parametrize("check_class", [RedisPool, AsyncRedisPool])
def test_paused_redis_is_unavailable_within_the_socket_timeout(
    fresh_server: RedisServer, check_class: type[RedisPool]
) -> None:
    socket_timeout = 0.3
    with alias(fresh_server, socket_timeout=socket_timeout):

        async def main() -> tuple[HealthCheckResult, float]:
            assert (await check_class(alias=ALIAS).get_result()).error is None
            assert fresh_server.proc is not None
            os.kill(fresh_server.proc.pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                result = await check_class(alias=ALIAS).get_result()
                return result, time.monotonic() - start
            finally:
                os.kill(fresh_server.proc.pid, signal.SIGCONT)

        result, elapsed = asyncio.run(main())
        assert isinstance(result.error, ServiceUnavailable)
        sync = check_class is RedisPool
        assert ("no PING answer within 300 ms" if sync else "TimeoutError") in str(result.error)
        # One socket timeout (timeouts are not retried), plus slack for a busy machine.
        assert socket_timeout <= elapsed < socket_timeout + 0.4
        # And it recovers once the server runs again.
        assert probe(check_class(alias=ALIAS)).error is None
    evidence(
        f"health_sigstop_{check_class.__name__}",
        socket_timeout_s=socket_timeout,
        unavailable_after_s=round(elapsed, 3),
    )


@pytest.mark.parametrize("check_class", [RedisPool, AsyncRedisPool])
def test_slow_redis_past_the_checks_timeout_is_unavailable(
    fresh_server: RedisServer, check_class: type[RedisPool]
) -> None:
    import datetime

    # No socket timeout of the alias's: the check's own bound is what ends the wait.
    with alias(fresh_server, socket_timeout=2.0):

        async def main() -> tuple[HealthCheckResult, float]:
            # Warm the pool first (a new loop's first PING also connects, which a loaded
            # machine can take longer than 200 ms over): the bound is for the PING alone.
            warm = check_class(alias=ALIAS, timeout=datetime.timedelta(seconds=5))
            assert (await warm.get_result()).error is None
            check = check_class(alias=ALIAS, timeout=datetime.timedelta(seconds=0.2))
            fresh_server.command("CLIENT", "PAUSE", "500", "ALL")
            start = time.monotonic()
            result = await check.get_result()
            return result, time.monotonic() - start

        result, elapsed = asyncio.run(main())
    assert isinstance(result.error, ServiceUnavailable)
    assert "no PING answer within 200 ms" in str(result.error)
    assert 0.2 <= elapsed < 0.45  # given up at the bound, not at the pause's end


def test_a_stalled_redis_does_not_hold_the_view_for_the_socket_timeout(
    fresh_server: RedisServer,
) -> None:
    """The sync check runs on a thread, which cannot be cancelled: with ``client.ping()`` the
    view answered after the alias's socket_timeout (3 s here), not the check's 0.2 s."""
    import datetime

    view = HealthCheckView.as_view(
        checks=[(RedisPool, {"alias": ALIAS, "timeout": datetime.timedelta(seconds=0.2)})]
    )
    request = AsyncRequestFactory().get("/ht/", {"format": "json"})
    with alias(fresh_server, socket_timeout=3.0):
        assert asyncio.run(view(request)).status_code == 200
        assert fresh_server.proc is not None
        os.kill(fresh_server.proc.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            response = asyncio.run(view(request))
            elapsed = time.monotonic() - start
        finally:
            os.kill(fresh_server.proc.pid, signal.SIGCONT)
        assert response.status_code == 500
        assert b"no PING answer within 200 ms" in response.content
        assert elapsed < 1.0
        # The connection that missed its answer was dropped: the next probe is clean.
        assert asyncio.run(view(request)).status_code == 200
    evidence("health_stalled_view", socket_timeout_s=3.0, answered_after_s=round(elapsed, 3))


def test_redis_down_is_unavailable(redis_server: RedisServer) -> None:
    server = RedisServer().start()
    try:
        with alias(server, socket_connect_timeout=0.5):
            assert probe(RedisPool(alias=ALIAS)).error is None
            server.kill()
            result = probe(RedisPool(alias=ALIAS))
            aresult = probe(AsyncRedisPool(alias=ALIAS))
    finally:
        server.cleanup()
    for error in (result.error, aresult.error):
        assert isinstance(error, ServiceUnavailable)
        assert "ConnectionError" in str(error)


def test_no_secret_in_messages_or_labels() -> None:
    password = "pa55-word-never-shown"
    with RedisServer(password=password) as server:
        wrong = server.url.replace(password, "wrong-" + password)
        with override_settings(REDIS_POOL={ALIAS: {"url": wrong, "publish_stats": False}}):
            checks = [RedisPool(alias=ALIAS), AsyncRedisPool(alias=ALIAS)]
            results = [probe(check) for check in checks]
    for check, result in zip(checks, results, strict=True):
        assert isinstance(result.error, ServiceUnavailable)
        shown = " ".join([str(result.error), repr(check), json.dumps(check.labels)])
        assert password not in shown
        assert check.labels == {"check": type(check).__name__, "alias": ALIAS}


def test_unknown_and_misconfigured_alias_are_unavailable(redis_server: RedisServer) -> None:
    with alias(redis_server):
        missing = probe(RedisPool(alias="nope")).error
        amissing = probe(AsyncRedisPool(alias="nope")).error
    assert isinstance(missing, ServiceUnavailable)
    assert "No Redis pool alias 'nope'" in str(missing)
    assert isinstance(amissing, ServiceUnavailable)
    bad = {ALIAS: {"url": redis_server.url, "max_connections": "many"}}
    with override_settings(REDIS_POOL=bad):
        error = probe(RedisPool(alias=ALIAS)).error
    assert isinstance(error, ServiceUnavailable)
    assert "misconfigured" in str(error)


def test_saturation_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="saturation"):
        RedisPool(saturation=0)
    with pytest.raises(ValueError, match="saturation"):
        RedisPool(saturation=1.5)


def test_through_django_health_checks_view(redis_server: RedisServer) -> None:
    view = HealthCheckView.as_view(
        checks=[
            ("redis_pool.contrib.health_check.RedisPool", {"alias": ALIAS}),
            (AsyncRedisPool, {"alias": ALIAS}),
        ]
    )
    request = AsyncRequestFactory().get("/ht/", {"format": "json"})
    with alias(redis_server, max_connections=5, pool_timeout=0.2):
        response = asyncio.run(view(request))
        assert response.status_code == 200
        assert json.loads(response.content) == {
            "RedisPool(alias='probed')": "OK",
            "AsyncRedisPool(alias='probed')": "OK",
        }
        held = _hold(4)
        try:
            response = asyncio.run(view(request))
        finally:
            _release(held)
    body = json.loads(response.content)
    # django-health-check 4.x answers 500 for a warning too; the text says which it is.
    assert response.status_code == 500
    assert body["RedisPool(alias='probed')"].startswith("Warning: Redis pool 'probed' is near")
    assert body["AsyncRedisPool(alias='probed')"] == "OK"  # its own loop's pool is idle


def test_without_the_extra_the_import_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "redis_pool.contrib.health_check")
    for name in [m for m in sys.modules if m == "health_check" or m.startswith("health_check.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'django-redis-pool\[health-check\]'"):
        importlib.import_module("redis_pool.contrib.health_check")
