"""The cache workload on three backends, same server, same run: ratios per operation.

    python benchmarks/bench_cache.py [--rounds 5] [--ops 1000] [--json]

Starts its own redis-server on a free loopback port. Backends: ``redis_pool.cache.RedisCache``
(on a REDIS_POOL alias), Django's ``RedisCache`` and django-redis's, all with their default
options, used from one thread the way a view uses ``caches["..."]``. Operations: ``get``,
``set``, ``incr``, ``get_many`` of 10, ``set_many`` of 10 (with a timeout) and ``delete``.
Each round runs every operation on every backend, the backends taking turns every 25
operations; the figure is the median over rounds of operations per second. Only ratios
within one run mean anything (the machine is shared). Goal (issue 11): no operation
slower than either other backend, ``incr`` >= 1.5x Django's (one round trip against its
two). A second table gives the client's CPU per operation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NAMES = {"ours": "redis_pool.cache", "django": "Django RedisCache", "djredis": "django-redis"}
OPS = ["get", "set", "incr", "get_many(10)", "set_many(10)", "delete"]
TEN = [f"m{i}" for i in range(10)]


CHUNK = 25  # operations per timed slice; backends alternate slice by slice


def workload(cache: Any) -> dict[str, Callable[[int], None]]:
    """One closure per operation; ``job(i)`` does slice ``i`` (CHUNK operations)."""
    data = {key: {"v": key} for key in TEN}

    def get(i: int) -> None:
        for _ in range(CHUNK):
            cache.get("hit")

    def set_(i: int) -> None:
        for j in range(i * CHUNK, (i + 1) * CHUNK):
            cache.set(f"k{j}", "value")

    def incr(i: int) -> None:
        for _ in range(CHUNK):
            cache.incr("counter")

    def get_many(i: int) -> None:
        for _ in range(CHUNK):
            cache.get_many(TEN)

    def set_many(i: int) -> None:
        for _ in range(CHUNK):
            cache.set_many(data, timeout=60)

    def delete(i: int) -> None:  # the keys set_() made: each DEL deletes one
        for j in range(i * CHUNK, (i + 1) * CHUNK):
            cache.delete(f"k{j}")

    return dict(zip(OPS, [get, set_, incr, get_many, set_many, delete], strict=True))


def run(rounds: int, n: int) -> dict[str, dict[str, float]]:
    """Median over rounds of ops/s, and of this process's CPU µs per operation (the
    client's own cost, less sensitive to other processes than wall time). Within a round
    the backends alternate every CHUNK operations, so a burst of load from other processes
    hits all three alike."""
    from django.core.cache import caches

    per_op: dict[str, dict[str, list[float]]] = {op: {b: [] for b in NAMES} for op in OPS}
    cpu_op: dict[str, dict[str, list[float]]] = {op: {b: [] for b in NAMES} for op in OPS}
    jobs = {}
    for backend in NAMES:
        cache = caches[backend]
        cache.set("hit", {"a": 1, "b": [1, 2, 3]})
        cache.set("counter", 0, timeout=None)
        cache.set_many({key: {"v": key} for key in TEN}, timeout=None)
        jobs[backend] = workload(cache)
        for job in jobs[backend].values():  # warm up: connections open, script loaded
            job(0)
    slices = max(1, n // CHUNK)
    order = list(NAMES)
    for r in range(rounds):
        for op in OPS:
            spent = dict.fromkeys(NAMES, 0.0)
            cpu = dict.fromkeys(NAMES, 0.0)
            for i in range(slices):
                order = order[1:] + order[:1]
                for backend in order:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    jobs[backend][op](i)
                    spent[backend] += time.perf_counter() - start
                    cpu[backend] += time.process_time() - start_cpu
            for backend, seconds in spent.items():
                per_op[op][backend].append(slices * CHUNK / seconds)
                cpu_op[op][backend].append(cpu[backend] / (slices * CHUNK) * 1e6)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    results = {}
    for op in OPS:
        results[op] = {b: statistics.median(v) for b, v in per_op[op].items()}
        results[op].update({f"{b}_cpu_us": statistics.median(cpu_op[op][b]) for b in NAMES})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--ops", type=int, default=1000, help="operations per round and op")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    from tests.redis_server import RedisServer

    with RedisServer() as server:
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks._bench_settings"
        os.environ["BENCH_REDIS_URL"] = server.url
        import django
        from django.conf import settings

        django.setup()
        settings.CACHES = {
            "ours": {"BACKEND": "redis_pool.cache.RedisCache", "LOCATION": "default"},
            "django": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": server.url.replace("/0", "/1"),
            },
            "djredis": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url.replace("/0", "/2"),
            },
        }
        results = run(args.rounds, args.ops)
        from django.core.cache import caches

        caches["django"]._cache._pools[0].disconnect()
        caches["djredis"].client.get_client().connection_pool.disconnect()
        from redis_pool import registry

        registry.close_all()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.rounds} rounds x {args.ops} ops, median ops/s (higher is better)")
    print("| operation | redis_pool.cache | Django RedisCache | django-redis "
          "| vs Django | vs django-redis |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for op, row in results.items():
        ours, theirs, djredis = row["ours"], row["django"], row["djredis"]
        print(
            f"| {op} | {ours:,.0f} | {theirs:,.0f} | {djredis:,.0f} "
            f"| {ours / theirs:.2f}x | {ours / djredis:.2f}x |"
        )
    print()
    print("client CPU µs per operation, median (lower is better)")
    print("| operation | redis_pool.cache | Django RedisCache | django-redis |")
    print("|---|---:|---:|---:|")
    for op, row in results.items():
        cells = " | ".join(f"{row[f'{b}_cpu_us']:.1f}" for b in NAMES)
        print(f"| {op} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
