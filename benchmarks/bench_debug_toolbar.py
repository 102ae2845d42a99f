"""Cost of the debug-toolbar panel's recording on a GET round trip, in the same run.

    .venv/bin/python benchmarks/bench_debug_toolbar.py [--rounds 9] [--ops 3000] [--check]

Starts its own redis-server on a free loopback port and runs GET through one of our pools
(``redis_pool.contrib.debug_toolbar``; needs the ``[debug-toolbar]`` extra) three ways, in
interleaved rounds, the median ratio against the first reported:

- ``off``: no request has the panel enabled, so redis-py's classes carry no wrapper;
- ``installed``: another request is being debugged (the wrappers are on), this one is not:
  each command pays a context-variable read; target <= 1.05 (``--check`` exits 1 above);
- ``recording``: this request is being debugged: each command is described and timed, and
  its pool's gauges read (information only: a debugging cost).

Then, without the network, the nanoseconds the wrapper adds to a call when its request is
not being debugged: the round trips' own jitter on a shared machine is larger than that.
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
sys.path.insert(0, str(ROOT))

TARGET = 1.05


def gets(client: Any, ops: int) -> float:
    """Seconds per GET (checkout, send, receive, release)."""
    get = client.get
    start = time.perf_counter()
    for _ in range(ops):
        get("k")
    return (time.perf_counter() - start) / ops


def wrapper_overhead(ops: int) -> float:
    """Seconds a wrapper adds to one call when this request is not being debugged: the
    wrapper around a do-nothing method against the method itself (no network: the added
    cost alone, which the round trips above are too noisy to show on a shared machine)."""
    from redis_pool.contrib.debug_toolbar import recording

    def method(self: Any, *args: Any, **options: Any) -> None:
        return None

    wrapped = recording._sync(method, False)
    start = time.perf_counter()
    for _ in range(ops):
        method(None, "GET", "k")
    plain = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(ops):
        wrapped(None, "GET", "k")
    return (time.perf_counter() - start - plain) / ops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (median)")
    parser.add_argument("--ops", type=int, default=3000, help="GETs per round and variant")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if 'installed' > {TARGET}")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks._bench_settings")
    os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")  # not used
    import django
    import redis

    django.setup()
    from redis_pool.config.alias import parse_alias
    from redis_pool.contrib.debug_toolbar import recording
    from redis_pool.pools import build_pool
    from tests.redis_server import RedisServer

    with RedisServer() as server:
        config, problems = parse_alias("default", {"url": server.url, "publish_stats": False})
        assert config is not None, problems
        pool = build_pool(config)
        client = redis.Redis(connection_pool=pool)
        client.set("k", "v")

        def installed(ops: int) -> float:
            recording.acquire()
            try:
                return gets(client, ops)
            finally:
                recording.release()

        def recorded(ops: int) -> float:
            recording.acquire()
            token = recording.current.set(recording.Recorder())
            try:
                return gets(client, ops)
            finally:
                recording.current.reset(token)
                recording.release()

        variants: dict[str, Callable[[int], float]] = {
            "off": lambda ops: gets(client, ops),
            "installed": installed,
            "recording": recorded,
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        ratios: dict[str, list[float]] = {name: [] for name in variants}
        for run in variants.values():
            run(args.ops // 10)  # warm up
        for i in range(args.rounds):
            # Rotate who goes first, so drift within a round favours none.
            names = list(variants)
            names = names[i % 3 :] + names[: i % 3]
            measured = {name: variants[name](args.ops) for name in names}
            for name, seconds in measured.items():
                times[name].append(seconds)
                ratios[name].append(seconds / measured["off"])
        pool.disconnect()

    overhead = statistics.median(wrapper_overhead(100_000) for _ in range(args.rounds))
    results: dict[str, Any] = {
        name: {
            "us_per_get": round(statistics.median(times[name]) * 1e6, 2),
            "ratio": round(statistics.median(ratios[name]), 4),
        }
        for name in variants
    }
    for name, row in results.items():
        print(f"{name:>10}  {row['us_per_get']:>8.2f}us  {row['ratio']:>7.3f}")
    results["wrapper_overhead_ns"] = round(overhead * 1e9, 1)
    print(f"a wrapper, this request not debugged: +{overhead * 1e9:.0f} ns per command")
    print(json.dumps({"bench": "debug_toolbar", "target": TARGET, "results": results}))
    over = results["installed"]["ratio"] > TARGET
    if over:
        print(f"'installed' above target {TARGET}", file=sys.stderr)
    return 1 if (args.check and over) else 0


if __name__ == "__main__":
    sys.exit(main())
