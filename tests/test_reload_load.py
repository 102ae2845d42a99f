"""Reloading REDIS_POOL (override_settings, setting_changed) while threads use the pool:
the replaced pool is retired, not torn down. Its idle connections close at once, the ones
lent out close when they come back, so no command in flight breaks, and the server never
sees more connections than the old and the new pool's max_connections together.

Prints one ``EVIDENCE`` line (``pytest tests/test_reload_load.py -s | grep EVIDENCE``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

from django.test import override_settings

from redis_pool import get_pool, get_redis
from tests.redis_server import RedisServer

THREADS = 64
LIMIT = 16
SWAPS = 10
SWAP_EVERY = 0.3  # seconds: a retired pool drains long before the next swap
# The server lists a connection until it has read the client's close, a moment after the
# pool closed it; a new connection may be listed in that moment. The pools' own count
# (``open``, sampled) is held to the bound exactly; the server's gets this much room.
UNREAD_CLOSES = 2


def test_reloads_under_load_break_nothing(fresh_server: RedisServer) -> None:
    first = {"url": fresh_server.url, "max_connections": LIMIT, "pool_timeout": 10}
    second = {**first, "socket_timeout": 4.0}  # any change of options builds a new pool
    stop = threading.Event()
    errors: Counter[str] = Counter()
    ops = [0] * THREADS
    peak = [0]
    samples = [0]
    own_peak = [0]
    names: list[Any] = []

    def worker(n: int) -> None:
        key = f"reload:{n}"
        i = 0
        while not stop.is_set():
            try:
                client = get_redis()
                client.set(key, i)
                if client.get(key) != str(i).encode():
                    errors["wrong reply"] += 1
                ops[n] += 1
            except Exception as exc:  # counted and reported below
                errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
            i += 1

    def sampler() -> None:
        while not stop.is_set():
            # Every client of this private server but the sampler's own connection and the
            # stats publisher's (not a pool connection).
            clients = [
                c
                for c in fresh_server.client_list()
                if not c.get("name", "").startswith("redis_pool_stats:")
            ]
            count = len(clients) - 1
            if count > peak[0]:
                peak[0] = count
                names[:] = sorted(Counter(c.get("name", "")[:40] for c in clients).items())
            samples[0] += 1
            opened = sum(pool.stats().open for pool in list(pools))
            own_peak[0] = max(own_peak[0], opened)
            time.sleep(0.005)

    pools: list[Any] = []  # kept referenced, so that ids stay distinct
    with override_settings(REDIS_POOL=first):
        pools.append(get_pool())
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        threads.append(threading.Thread(target=sampler))
        for thread in threads:
            thread.start()
        try:
            for _ in range(SWAPS // 2):
                time.sleep(SWAP_EVERY)
                with override_settings(REDIS_POOL=second):
                    pools.append(get_pool())
                    time.sleep(SWAP_EVERY)
                pools.append(get_pool())  # leaving the override swaps back
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        alive = sum(thread.is_alive() for thread in threads)
    figures: dict[str, Any] = {
        "threads": THREADS,
        "max_connections": LIMIT,
        "pools_built": len({id(pool) for pool in pools}),
        "ops": sum(ops),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(3)),
        "peak_connections": peak[0],
        "bound": 2 * LIMIT,
        "samples": samples[0],
        "min_ops_per_thread": min(ops),
        "names_at_peak": names,
        "pools_open_peak": own_peak[0],
    }
    print(f"EVIDENCE reload_under_load {json.dumps(figures, sort_keys=True)}")
    assert alive == 0
    assert figures["pools_built"] == SWAPS + 1
    assert figures["errors"] == 0, errors
    assert own_peak[0] <= 2 * LIMIT
    assert peak[0] <= 2 * LIMIT + UNREAD_CLOSES
    assert min(ops) > 0
