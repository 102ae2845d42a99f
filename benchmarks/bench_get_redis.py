"""Cost of ``get_redis()`` against a module-level client, in the same run.

    python benchmarks/bench_get_redis.py [--rounds 7] [--ops 20000]

Starts its own redis-server on a free loopback port. Two measurements, each as the median
of interleaved rounds (the machines are shared and noisy, so only ratios within one run
mean anything):

1. acquisition alone: ``get_redis()`` vs reading a module-level name vs building
   ``redis.Redis(connection_pool=pool)`` per call (what a get_redis() building per call would cost);
2. acquisition + one GET round trip, the way a view uses it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--ops", type=int, default=20000, help="GETs per round and variant")
    args = parser.parse_args()

    from tests.redis_server import RedisServer

    with RedisServer() as server:
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks._bench_settings"
        os.environ["BENCH_REDIS_URL"] = server.url
        import django
        import redis

        django.setup()
        from redis_pool import get_pool, get_redis

        module_client = get_redis()  # what a module-level `client = ...` would hold
        pool = get_pool()
        plain_pool = redis.ConnectionPool.from_url(server.url)
        plain_client = redis.Redis(connection_pool=plain_pool)
        module_client.set("k", "v")
        plain_client.set("k", "v")

        acquire_n = args.ops * 20
        acquire: dict[str, Callable[[], object]] = {
            "module-level name": lambda: module_client,
            "get_redis()": get_redis,
            "Redis(connection_pool=pool) per call": lambda: redis.Redis(connection_pool=pool),
        }
        roundtrip: dict[str, Callable[[], object]] = {
            "module-level redis-py pool + GET": lambda: plain_client.get("k"),
            "module-level client (ours) + GET": lambda: module_client.get("k"),
            "get_redis() + GET": lambda: get_redis().get("k"),
            "Redis(connection_pool=pool) per call + GET": lambda: redis.Redis(
                connection_pool=pool
            ).get("k"),
        }
        results: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, func in acquire.items():
                n = acquire_n if "per call" not in name else args.ops
                results.setdefault(name, []).append(_ns_per_call(func, n))
            for name, func in roundtrip.items():
                results.setdefault(name, []).append(_ns_per_call(func, args.ops))
        plain_pool.disconnect()

    med = {name: statistics.median(values) for name, values in results.items()}
    print(f"redis-py {redis.__version__}, {args.rounds} rounds, medians")
    print("\n| acquisition | ns/call |")
    print("|---|---:|")
    for name in acquire:
        print(f"| {name} | {med[name]:,.0f} |")
    base = med["module-level redis-py pool + GET"]
    print("\n| acquisition + GET | µs/op | speed vs module-level redis-py pool |")
    print("|---|---:|---:|")
    for name in roundtrip:
        print(f"| {name} | {med[name] / 1000:.1f} | {base / med[name]:.3f}x |")
    return 0


def _ns_per_call(func: Callable[[], object], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        func()
    return (time.perf_counter_ns() - start) / n


if __name__ == "__main__":
    sys.exit(main())
