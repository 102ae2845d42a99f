from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer

_session_server: RedisServer | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Before pytest-django sets Django up: tests/settings.py reads this URL.
    global _session_server
    from django.conf import settings

    _session_server = RedisServer(port=settings.PORT).start()


def pytest_unconfigure(config: pytest.Config) -> None:
    from redis_pool import registry

    registry.close_all()
    if _session_server is not None:
        _session_server.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """The session's redis-server, the one tests/settings.py points at."""
    assert _session_server is not None
    return _session_server


@pytest.fixture(autouse=True)
def _clean_redis(redis_server: RedisServer) -> None:
    # The server is ours and started empty; flush between tests so they don't interact.
    redis_server.command("FLUSHALL")


@pytest.fixture
def fresh_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, for tests that stop, kill or reconfigure it."""
    with RedisServer() as server:
        yield server
