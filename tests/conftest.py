from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_pool.observability import monitor
from tests.helpers import no_async_pools_left
from tests.redis_server import RedisServer
from tests.topology_servers import ACLServer, ClusterSetup, SentinelSetup, TLSServer

_session_server: RedisServer | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Before pytest-django sets Django up: tests/settings.py reads this URL.
    global _session_server
    from django.conf import settings

    _session_server = RedisServer(port=settings.PORT).start()
    config.addinivalue_line(
        "markers", "swaps_roles: changes a shared topology for good; runs after its other users"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that swaps a shared (session) topology's roles runs after every other test, so
    # that its other users see the topology as it started, whatever order files are given in.
    # Nothing else moves: the slow tests are grouped by their marker (-m slow / -m "not slow").
    items.sort(key=lambda item: item.get_closest_marker("swaps_roles") is not None)  # stable


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


# -- topologies: each started once per run, by the first test that needs it -----------------


@pytest.fixture(scope="session")
def sentinel_setup() -> Iterator[SentinelSetup]:
    """A master, a replica and two sentinels (about 2 s to start)."""
    setup = SentinelSetup(sentinels=2).start()
    try:
        yield setup
    finally:
        setup.cleanup()


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterSetup]:
    """A cluster of three masters."""
    setup = ClusterSetup(masters=3).start()
    try:
        yield setup
    finally:
        setup.cleanup()


@pytest.fixture(scope="session")
def tls() -> Iterator[TLSServer]:
    """A redis-server requiring TLS client certificates, with certificates made per run."""
    server = TLSServer()
    server.start()  # typed as returning a RedisServer
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def acl_server() -> Iterator[ACLServer]:
    """A redis-server whose user ``ACL_USER`` may only read and write ``app:*`` keys."""
    server = ACLServer().start()
    try:
        yield server
    finally:
        server.cleanup()


# -- per-test guards, used by the modules that need them ---------------------------------


@pytest.fixture
def monitor_stopped() -> Iterator[None]:
    """No monitor thread and no stats connections before or after the test, so that what
    the server sees is what the test did."""
    monitor.stop()
    yield
    monitor.stop()


@pytest.fixture
def no_async_pools_survive() -> Iterator[None]:
    """Every async pool the test made is closed with its event loop."""
    yield
    assert no_async_pools_left("default", "other")
