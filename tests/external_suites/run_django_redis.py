"""django-redis's own ``tests/test_backend.py`` (from its installed version's sdist) against
``redis_pool.cache.RedisCache``, for the features we offer.

    python -m tests.external_suites.run_django_redis [pytest args]

Tests of features we do not offer are deselected by name with the reason (NOT_OFFERED,
printed, and listed in docs/cache.md); every other test must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.external_suites.fetch import cache_dir, sdist_tree  # noqa: E402

HERE = Path(__file__).resolve().parent

_SETS = "django-redis's set commands on the cache (sadd, smembers, ...): use get_redis()"
_HASHES = "django-redis's hash commands on the cache (hset, hkeys, ...): use get_redis()"
_BIG = (
    "incr/decr past 64-bit integers: Redis's INCRBY refuses them (ResponseError, as Django's "
    "backend); django-redis falls back to a non-atomic read and write"
)
# Test name -> why it does not apply to redis_pool.cache (docs/cache.md repeats this list).
NOT_OFFERED: dict[str, str] = {
    "test_incr": _BIG,
    "test_incr_no_timeout": _BIG,
    "test_incr_ignore_check": _BIG,
    "test_decr": _BIG,
    "test_set_call_empty_pipeline": "django-redis's client= argument (a pipeline) to set()",
    "test_delete_pattern_with_custom_count": "mocks django-redis's internal RedisCache.client",
    "test_delete_pattern_with_settings_default_scan_count": (
        "mocks django-redis's internal RedisCache.client (DJANGO_REDIS_SCAN_ITERSIZE)"
    ),
    "test_close_client": "close() disconnects in django-redis; here the alias's pool stays open",
    "test_close_with_signal_parameter": "mocks django-redis's client.close(); see above",
    "test_primary_replica_switching": (
        "django-redis's list of LOCATIONs (primary + replicas): use a Sentinel alias"
    ),
    "test_primary_replica_switching_with_index": "as above: get_client_with_index()",
    **{
        name: _HASHES
        for name in (
            "test_hset",
            "test_hdel",
            "test_hlen",
            "test_hkeys",
            "test_hexists",
            "test_hash_version_support",
            "test_hash_key_structure_in_redis",
        )
    },
    **{
        name: _SETS
        for name in (
            "test_sadd",
            "test_scard",
            "test_sdiff",
            "test_sdiffstore",
            "test_sdiffstore_with_keys_version",
            "test_sdiffstore_with_different_keys_versions_without_initial_set_in_version",
            "test_sdiffstore_with_different_keys_versions_with_initial_set_in_version",
            "test_sinter",
            "test_interstore",
            "test_sismember",
            "test_smove",
            "test_spop_default_count",
            "test_spop",
            "test_srandmember_default_count",
            "test_srandmember",
            "test_srem",
            "test_sscan",
            "test_sscan_with_match",
            "test_sscan_iter",
            "test_sscan_iter_with_match",
            "test_smismember",
            "test_sunion",
            "test_sunionstore",
        )
    },
}


def main() -> int:
    tree = sdist_tree("django-redis", "django_redis")
    work = cache_dir() / "django_redis_run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for name in ("test_backend.py", "settings_wrapper.py"):
        shutil.copy(tree / "tests" / name, work / name)
    shutil.copy(HERE / "django_redis_conftest.py", work / "conftest.py")
    shutil.copy(HERE / "django_redis_settings.py", work / "suite_settings.py")
    deselect = [
        f"--deselect=test_backend.py::TestDjangoRedisCache::{name}[redis_pool]"
        for name in NOT_OFFERED
    ]
    env = {**os.environ, "REDIS_POOL_REPO": str(ROOT), "PYTHONPATH": f"{work}:{ROOT}"}
    print(f"django-redis {version('django-redis')} tests/test_backend.py on redis_pool.cache:")
    print(f"  {len(NOT_OFFERED)} tests deselected (features not offered):")
    for name, reason in NOT_OFFERED.items():
        print(f"    {name}: {reason}")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:django",
               "--rootdir", str(work), "-c", "/dev/null", "-q", "test_backend.py",
               *deselect, *sys.argv[1:]]  # fmt: skip
    return subprocess.run(command, cwd=work, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
