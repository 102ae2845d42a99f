"""Django's ``RedisCacheTests`` (BaseCacheTests + its Redis extras) and cache-session tests,
from the installed Django's sdist, against ``redis_pool.cache.RedisCache``.

    python -m tests.external_suites.run_django [-v 2]

Exit status 0 only if every test passes or is in EXCLUDED (each with its reason, printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import unittest
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.external_suites.fetch import sdist_tree  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

# Tests that do not apply, by name, with the reason (docs/cache.md repeats this list).
EXCLUDED = {
    "test_incr_write_connection": "mocks RedisCacheClient.get_client, Django's internal class",
    "test_cache_client_class": "asserts Django's internal RedisCacheClient class",
    "test_get_connection_pool_index": "Django's multi-server read/write split; one alias here",
    "test_get_connection_pool": "Django's internal per-instance pool; the alias's pool here",
    "test_get_client": "Django's internal RedisCacheClient.get_client()",
    "test_serializer_dumps": "Django's internal cache._cache._serializer attribute",
    "test_redis_pool_options": (
        "connection OPTIONS (db, socket_timeout) in CACHES: refused by design, they belong "
        "in REDIS_POOL"
    ),
}


def build_suite() -> unittest.TestSuite:
    import redis
    from cache.tests import RedisCacheTests, caches_setting_for_tests, redis_excluded_caches
    from django.test import override_settings
    from sessions_tests.tests import (
        CacheDBSessionTests,
        CacheDBSessionWithTimeZoneTests,
        CacheSessionTests,
    )

    ours = {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "suite"}

    @override_settings(CACHES=caches_setting_for_tests(base=ours, exclude=redis_excluded_caches))
    class RedisPoolCacheTests(RedisCacheTests):  # type: ignore[misc,valid-type]
        # Django skips its class unless its own backend is configured; unittest reports
        # the class's skip reason before a method's, hence both.
        __unittest_skip__ = False
        __unittest_skip_why__ = ""
        lib = redis

    for name, reason in EXCLUDED.items():
        setattr(RedisPoolCacheTests, name, unittest.skip(f"excluded: {reason}")(lambda s: None))

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for case in (RedisPoolCacheTests, CacheSessionTests, CacheDBSessionTests,
                 CacheDBSessionWithTimeZoneTests):  # fmt: skip
        suite.addTests(loader.loadTestsFromTestCase(case))
    return suite


def _tests(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    return [t for t in suite if isinstance(t, unittest.TestCase)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbosity", type=int, default=1, help="unittest verbosity")
    args = parser.parse_args()
    tree = sdist_tree("Django", "django")
    sys.path.insert(0, str(tree / "tests"))
    with RedisServer() as server:
        os.environ["REDIS_POOL_SUITE_URL"] = f"redis://127.0.0.1:{server.port}/15"
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.external_suites.django_settings"
        import django
        from django.test.utils import get_runner

        django.setup()
        from django.conf import settings

        runner: Any = get_runner(settings)(verbosity=args.verbosity, interactive=False)
        runner.setup_test_environment()
        old = runner.setup_databases()
        try:
            result = runner.run_suite(build_suite())
        finally:
            runner.teardown_databases(old)
            runner.teardown_test_environment()
            from redis_pool import registry

            registry.close_all()
    skipped = len(result.skipped)
    passed = result.testsRun - skipped - len(result.failures) - len(result.errors)
    print(
        f"django {django.get_version()} cache + cache-session suites on redis_pool.cache: "
        f"{result.testsRun} run, {passed} passed, {skipped} skipped, "
        f"{len(result.failures)} failed, {len(result.errors)} errors"
    )
    by_class: dict[str, list[int]] = {}
    outcomes = [(t, 1) for t, _ in result.failures + result.errors] + [
        (t, 2) for t, _ in result.skipped
    ]
    for test in _tests(build_suite()):
        by_class.setdefault(type(test).__name__, [0, 0, 0])
    for test, kind in outcomes:
        by_class[type(test).__name__][kind] += 1
    for name, (_, bad, skipped_here) in by_class.items():
        total = sum(1 for t in _tests(build_suite()) if type(t).__name__ == name)
        print(f"  {name}: {total} tests, {total - bad - skipped_here} passed, "
              f"{skipped_here} skipped, {bad} failed")  # fmt: skip
    for test, reason in result.skipped:
        print(f"  skipped {test.id().rsplit('.', 1)[-1]}: {reason}")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
