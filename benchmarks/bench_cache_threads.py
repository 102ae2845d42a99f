"""16 threads, ``max_connections=2``: pools and server connections of three cache backends.

    python benchmarks/bench_cache_threads.py [--threads 16] [--ops 200] [--json]

Starts its own redis-server on a free loopback port. Each backend runs the same job: every
thread takes ``caches["bench"]`` (Django gives each thread its own backend instance) and
does ``ops`` set+get pairs. Measured: distinct pool objects behind the threads' instances,
server connections opened (INFO ``total_connections_received``) and at most open at once
(``connected_clients``, sampled every 5 ms), errors by type, and wall time. The pool limit
is 2 everywhere, blocking (wait up to 5 s) and, for the other two, also their default
non-blocking pool. Figures go to docs/cache.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIMIT = 2

BACKENDS: dict[str, dict[str, Any]] = {
    "redis_pool.cache.RedisCache (blocking, pool_timeout 5)": {
        "BACKEND": "redis_pool.cache.RedisCache",
        "LOCATION": "threads",
    },
    "django RedisCache (plain pool)": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "OPTIONS": {"max_connections": LIMIT},
    },
    "django RedisCache (BlockingConnectionPool, timeout 5)": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "OPTIONS": {
            "max_connections": LIMIT,
            "pool_class": "redis.BlockingConnectionPool",
            "timeout": 5,
        },
    },
    "django-redis (plain pool)": {
        "BACKEND": "django_redis.cache.RedisCache",
        "OPTIONS": {"CONNECTION_POOL_KWARGS": {"max_connections": LIMIT}},
    },
    "django-redis (BlockingConnectionPool, timeout 5)": {
        "BACKEND": "django_redis.cache.RedisCache",
        "OPTIONS": {
            "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
            "CONNECTION_POOL_KWARGS": {"max_connections": LIMIT, "timeout": 5},
        },
    },
}


def _pools_of(cache: Any) -> list[Any]:
    """The pool objects behind one backend instance (no network)."""
    from redis_pool import get_pool
    from redis_pool.cache import RedisCache

    if isinstance(cache, RedisCache):
        return [get_pool(cache.alias)]
    if hasattr(cache, "_cache"):  # Django's: a dict of pools, filled on first use
        return list(cache._cache._pools.values())
    return [c.connection_pool for c in cache.client._clients if c is not None]


def _info(client: Any, field: str) -> int:
    return int(client.info()[field])


STATS_PREFIX = "redis_pool_stats:"  # the fleet-stats publisher's own connection, not a pool's


def _clients(probe: Any) -> dict[str, str]:
    """Server connections by id -> name, without the probe's own."""
    me = str(probe.client_id())
    return {str(c["id"]): c.get("name", "") for c in probe.client_list() if str(c["id"]) != me}


def measure(entry: dict[str, Any], url: str, threads: int = 16, ops: int = 200) -> dict[str, Any]:
    """Run the job on ``CACHES={"bench": entry}`` (LOCATION defaults to ``url``)."""
    import redis
    from django.core.cache import caches
    from django.test import override_settings
    from django_redis.pool import ConnectionFactory

    ConnectionFactory._pools.clear()  # process-global: start each backend from nothing
    entry = {"LOCATION": url, **entry}
    probe = redis.Redis.from_url(url, single_connection_client=True)
    errors: Counter[str] = Counter()
    pools: dict[int, Any] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    done = threading.Event()
    baseline = set(_clients(probe))
    stats_seen: set[str] = set()

    samples: list[set[str]] = []

    def sample() -> None:
        while not done.is_set():
            new = {i: n for i, n in _clients(probe).items() if i not in baseline}
            # A connection shows unnamed until its CLIENT SETNAME: judge by its last name.
            stats_seen.update(i for i, n in new.items() if n.startswith(STATS_PREFIX))
            samples.append(set(new))
            time.sleep(0.005)

    def work(n: int) -> None:
        barrier.wait()
        cache = caches["bench"]
        for i in range(ops):
            try:
                cache.set(f"k{n}", i)
                cache.get(f"k{n}")
            except Exception as exc:
                with lock:
                    errors[type(exc).__name__] += 1
        with lock:
            for pool in _pools_of(cache):
                pools[id(pool)] = pool

    with override_settings(CACHES={"bench": entry}):
        opened_before = _info(probe, "total_connections_received")
        sampler = threading.Thread(target=sample)
        sampler.start()
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        opened = _info(probe, "total_connections_received") - opened_before - len(stats_seen)
        peak = max((len(ids - stats_seen) for ids in samples), default=0)
    for pool in pools.values():
        if not hasattr(pool, "alias"):  # ours stays open: it is the alias's pool
            pool.disconnect()
    probe.close()
    return {
        "pools": len(pools),
        "connections_opened": opened,
        "peak_connections": peak,
        "stats_publisher_connections": len(stats_seen),
        "failed_ops": sum(errors.values()),
        "errors": dict(errors),
        "ops": threads * ops * 2,
        "seconds": round(elapsed, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=16, help="threads")
    parser.add_argument("--ops", type=int, default=200, help="set+get pairs per thread")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    from tests.redis_server import RedisServer

    with RedisServer() as server:
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks._bench_settings"
        os.environ["BENCH_REDIS_URL"] = server.url
        import django
        from django.conf import settings

        django.setup()
        settings.REDIS_POOL = {
            "default": {"url": server.url},
            "threads": {"url": server.url, "max_connections": LIMIT, "pool_timeout": 5},
        }
        from redis_pool import registry

        registry.load()
        results = {
            name: measure(entry, server.url, args.threads, args.ops)
            for name, entry in BACKENDS.items()
        }
        registry.close_all()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.threads} threads x {args.ops} set+get pairs, max_connections={LIMIT}")
    print("(connections exclude redis_pool's stats publisher, one per alias, outside the pool)")
    print(
        "| backend | pools | server connections opened | at most open at once "
        "| failed ops | errors | s |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, r in results.items():
        errs = ", ".join(f"{k} x{v}" for k, v in r["errors"].items()) or "none"
        print(
            f"| {name} | {r['pools']} | {r['connections_opened']} | {r['peak_connections']} "
            f"| {r['failed_ops']} / {r['ops']} | {errs} | {r['seconds']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
