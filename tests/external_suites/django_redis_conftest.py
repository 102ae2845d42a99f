"""conftest.py for django-redis's own tests/test_backend.py, run on redis_pool.cache.

Copied by run_django_redis.py next to the test file in a scratch directory. It replaces
django-redis's conftest (which parametrizes over its own backends' settings) with one
settings module: every cache is ``redis_pool.cache.RedisCache`` on a redis-server this
conftest starts on loopback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.environ["REDIS_POOL_REPO"])

from tests.redis_server import RedisServer

_server: RedisServer | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _server
    _server = RedisServer().start()
    os.environ["REDIS_POOL_SUITE_URL"] = f"redis://127.0.0.1:{_server.port}/1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "suite_settings"
    import django

    django.setup()


def pytest_unconfigure(config: pytest.Config) -> None:
    from redis_pool import registry

    registry.close_all()
    if _server is not None:
        _server.cleanup()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cache" in metafunc.fixturenames or "session" in metafunc.fixturenames:
        metafunc.parametrize("cache_settings", ["redis_pool"])


@pytest.fixture
def settings() -> Iterator[Any]:
    from settings_wrapper import SettingsWrapper

    wrapper = SettingsWrapper()
    yield wrapper
    wrapper.finalize()


@pytest.fixture
def cache(cache_settings: str) -> Iterator[Any]:
    from django.core.cache import cache as default_cache

    yield default_cache
    default_cache.clear()
