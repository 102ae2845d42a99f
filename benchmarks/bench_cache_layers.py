"""Where a cache operation's client CPU goes: the backend's layer against the client's.

    python benchmarks/bench_cache_layers.py [--rounds 60]

Starts its own redis-server on a free loopback port. Interleaved CPU µs per ``DEL`` of one
key (chunks of 250, median over rounds): the alias's client from ``get_redis()``, plain
redis-py clients (``ConnectionPool``, ``BlockingConnectionPool``, and a blocking pool with the
alias's connection options), ``redis_pool.cache`` ``delete()`` and django-redis's
``delete()``. The backend's own cost is its ``delete()`` minus its client's ``DEL``. Only
differences within one run mean anything (the machine is shared).
"""

from __future__ import annotations

import argparse
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

CHUNK = 250
OPTIONS = (
    "host",
    "port",
    "db",
    "socket_connect_timeout",
    "socket_timeout",
    "health_check_interval",
    "retry",
    "socket_keepalive",
)


def paths(url: str) -> tuple[dict[str, Callable[[], object]], list[Any]]:
    import redis
    from django.core.cache import caches

    from redis_pool import get_redis

    ours, djredis = caches["ours"], caches["djredis"]
    alias = get_redis("default")
    kwargs = alias.connection_pool.connection_kwargs
    plain = redis.Redis.from_url(url)
    blocking = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url))
    same = redis.Redis(
        connection_pool=redis.BlockingConnectionPool(**{k: kwargs[k] for k in OPTIONS})
    )
    return {
        "get_redis(alias).execute_command": lambda: alias.execute_command("DEL", ":1:x"),
        "redis.Redis(ConnectionPool)": lambda: plain.execute_command("DEL", ":1:x"),
        "redis.Redis(BlockingConnectionPool)": lambda: blocking.execute_command("DEL", ":1:x"),
        "same, with the alias's connection options": lambda: same.execute_command("DEL", ":1:x"),
        "redis_pool.cache delete()": lambda: ours.delete("x"),
        "django-redis delete()": lambda: djredis.delete("x"),
    }, [plain, blocking, same, djredis.client.get_client()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds (median)")
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
            "djredis": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url.replace("/0", "/2"),
            },
        }
        tests, clients = paths(server.url)
        results: dict[str, list[float]] = {name: [] for name in tests}
        for call in tests.values():  # warm up: connections open
            for _ in range(CHUNK):
                call()
        for _ in range(args.rounds):
            for name, call in tests.items():
                start = time.process_time()
                for _ in range(CHUNK):
                    call()
                results[name].append((time.process_time() - start) / CHUNK * 1e6)
        from redis_pool import registry

        registry.close_all()
        for client in clients:
            client.connection_pool.disconnect()
    print("| path | CPU µs per DEL (median) | quartiles |")
    print("|---|---:|---:|")
    for name, values in results.items():
        low, _, high = statistics.quantiles(values, n=4)
        print(f"| {name} | {statistics.median(values):.1f} | {low:.1f}-{high:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
