"""Cost of redis_pool's instrumentation on a checkout + release cycle, in the same run.

    .venv/bin/python benchmarks/bench_instrumentation.py [--rounds 21] [--ops 20000] [--check]

Starts its own redis-server on a free loopback port. For each pool kind (plain
``ConnectionPool``, ``BlockingConnectionPool``), a redis-py pool of that class and ours,
built from the same parsed settings, each with one warm connection, run
``get_connection()`` + ``release()`` in interleaved rounds; the ratio ours / redis-py is
taken per round and the median reported (the machines are shared and noisy: only ratios
within one run mean anything). Target: <= 1.05. ``--check`` exits 1 above it.

Our pools also skip redis-py's ``os.getpid()`` system call on every checkout and return
(``redis_pool.pools._redis_py.CheapPidCheck``), which saves more than the counting costs. So
that this does not hide the counting, a second baseline is redis-py's pool with only that
change: "counting alone" rows are ours against it.

For information it also reports the same cycle with leak detection on (captures the
checkout stack: off by default) and a whole command (GET) through a client on each pool.
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


def cycle(pool: Any, ops: int) -> float:
    """Seconds per checkout + release."""
    get, release = pool.get_connection, pool.release
    start = time.perf_counter()
    for _ in range(ops):
        release(get())
    return (time.perf_counter() - start) / ops


def command(client: Any, ops: int) -> float:
    """Seconds per GET (checkout, send, receive, release)."""
    get = client.get
    start = time.perf_counter()
    for _ in range(ops):
        get("k")
    return (time.perf_counter() - start) / ops


def paired(
    base: Callable[[int], float], ours: Callable[[int], float], rounds: int, ops: int
) -> dict[str, float]:
    base(ops // 10), ours(ops // 10)  # warm up
    ratios, base_times, our_times = [], [], []
    for i in range(rounds):
        # Alternate who goes first, so drift within a round favours neither.
        if i % 2:
            b, o = base(ops), ours(ops)
        else:
            o, b = ours(ops), base(ops)
        ratios.append(o / b)
        base_times.append(b)
        our_times.append(o)
    return {
        "redis_py_us": round(statistics.median(base_times) * 1e6, 3),
        "redis_pool_us": round(statistics.median(our_times) * 1e6, 3),
        "ratio": round(statistics.median(ratios), 4),
    }


def pid_cached(base: type[Any]) -> type[Any]:
    """redis-py's pool class with only our pid check (no counting): the second baseline."""
    from redis_pool.pools._redis_py import CheapPidCheck

    class PidCached(CheapPidCheck, base):  # type: ignore[misc,valid-type]
        pass

    return PidCached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (median)")
    parser.add_argument("--ops", type=int, default=20000, help="cycles per round and variant")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a ratio > {TARGET}")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks._bench_settings")
    os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")  # not used
    import django
    import redis
    from redis.connection import BlockingConnectionPool, ConnectionPool

    django.setup()
    from redis_pool.config.alias import parse_alias
    from redis_pool.pools.sync import build_pool
    from tests.redis_server import RedisServer

    results: dict[str, dict[str, float]] = {}
    with RedisServer() as server:
        for kind, pool_timeout in (("plain", None), ("blocking", 2.0)):
            for leaks in (False, True):
                options: dict[str, Any] = {
                    "url": server.url,
                    "pool_timeout": pool_timeout,
                    "publish_stats": False,  # this measures the hot path alone
                }
                if leaks:
                    options["leak_detection_threshold"] = 60.0
                config, problems = parse_alias("default", options)
                assert config is not None, problems
                ours = build_pool(config)
                kwargs = dict(config.kwargs)
                base: ConnectionPool = (
                    ConnectionPool(max_connections=config.max_connections, **kwargs)
                    if pool_timeout is None
                    else BlockingConnectionPool(
                        max_connections=config.max_connections, timeout=pool_timeout, **kwargs
                    )
                )
                try:
                    name = f"{kind}{' + leak detection' if leaks else ''}: checkout+release"
                    results[name] = paired(
                        lambda n, p=base: cycle(p, n),  # type: ignore[misc]
                        lambda n, p=ours: cycle(p, n),  # type: ignore[misc]
                        args.rounds,
                        args.ops,
                    )
                    if not leaks:
                        cached = pid_cached(type(base))(
                            max_connections=config.max_connections,
                            **({} if pool_timeout is None else {"timeout": pool_timeout}),
                            **kwargs,
                        )
                        try:
                            results[f"{kind}: counting alone"] = paired(
                                lambda n, p=cached: cycle(p, n),  # type: ignore[misc]
                                lambda n, p=ours: cycle(p, n),  # type: ignore[misc]
                                args.rounds,
                                args.ops,
                            )
                        finally:
                            cached.disconnect()
                        base_client = redis.Redis(connection_pool=base)
                        our_client = redis.Redis(connection_pool=ours)
                        base_client.set("k", "v")
                        results[f"{kind}: GET round trip"] = paired(
                            lambda n, c=base_client: command(c, n),  # type: ignore[misc]
                            lambda n, c=our_client: command(c, n),  # type: ignore[misc]
                            max(5, args.rounds // 3),
                            max(1000, args.ops // 10),
                        )
                finally:
                    ours.disconnect()
                    base.disconnect()

    width = max(map(len, results))
    print(f"{'':{width}}  {'baseline':>10}  {'redis_pool':>10}  {'ratio':>7}")
    for name, row in results.items():
        print(
            f"{name:{width}}  {row['redis_py_us']:>8.2f}us  {row['redis_pool_us']:>8.2f}us"
            f"  {row['ratio']:>7.3f}"
        )
    print(json.dumps({"bench": "instrumentation", "target": TARGET, "results": results}))
    over = [
        name
        for name, row in results.items()
        if name.endswith("checkout+release") and "leak" not in name and row["ratio"] > TARGET
    ]
    if over:
        print(f"above target {TARGET}: {', '.join(over)}", file=sys.stderr)
    return 1 if (args.check and over) else 0


if __name__ == "__main__":
    sys.exit(main())
