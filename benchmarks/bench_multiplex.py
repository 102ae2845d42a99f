"""The multiplexed client against pools: tasks looping SET+GET, and its fairness,
cancellation and fault figures.

    .venv/bin/python benchmarks/bench_multiplex.py [--seconds 2] [--rounds 1]
        [--tasks 1,16,64,256] [--rtt 0,1] [--sections loops,fairness,cancel,faults] [--json PATH]

Starts its own redis-server on a free loopback port and, for RTT 1 ms, a delaying proxy
process in front of it (tests/latency_proxy.py: replies delayed 1 ms). RTT 0 is direct.
One process, one event loop, one run; the clients of a cell run one after another for
``--seconds`` each after a short warm-up, ``--rounds`` times in alternating order (the
median is reported). Per cell: commands/s, this process's CPU per
command (``time.process_time``, so neither redis-server nor the proxy), and the server
connections the client held at the end of the cell.

Clients: redis-py's ``redis.asyncio.BlockingConnectionPool`` (8 and 64 connections),
ours (``aget_redis()`` on an alias with ``max_connections`` 64), ``MultiplexedRedis`` on
that alias's pool, and coredis 6 (``pip install coredis``; skipped when missing).
Goals (issue 13): at 64 tasks and 1 ms, multiplexed >= 5x redis-py's pool of 8 and >= 2x
ours of 64; at 1 task >= 0.95x ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.latency_proxy import LatencyProxy  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

CLIENTS = ["redis-py pool 8", "redis-py pool 64", "ours pool 64", "multiplexed", "coredis"]


def server_connections(server: RedisServer) -> int:
    return len(server.client_list()) - 1  # minus the harness's own CLIENT LIST connection


@asynccontextmanager
async def client_for(name: str, alias: str, url: str) -> AsyncIterator[Any]:
    import redis.asyncio

    from redis_pool import aget_redis
    from redis_pool.multiplex import MultiplexedRedis

    if name.startswith("redis-py pool"):
        size = int(name.rsplit(" ", 1)[1])
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=size)
        client = redis.asyncio.Redis(connection_pool=pool)
        yield client
        await client.aclose()
        await pool.disconnect()
    elif name == "ours pool 64":
        client = aget_redis(alias)
        yield client
        await client.connection_pool.disconnect()
    elif name == "multiplexed":
        mux = MultiplexedRedis(aget_redis(alias).connection_pool)
        yield mux
        await mux.aclose()
        await mux.connection_pool.disconnect()
    else:
        import coredis

        host, port = url.split("//")[1].split("/")[0].split(":")
        async with coredis.Redis(host=host, port=int(port)) as client:
            yield client


async def loops(client: Any, tasks: int, seconds: float) -> tuple[int, float]:
    """``tasks`` tasks doing SET+GET until ``seconds`` pass: (commands, elapsed)."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        key = f"bench:{i}"
        while loop.time() < stop:
            await client.set(key, i)
            await client.get(key)
            done += 2

    start = loop.time()
    await asyncio.gather(*(one(i) for i in range(tasks)))
    return done, loop.time() - start


async def cell(
    name: str, alias: str, url: str, server: RedisServer, tasks: int, seconds: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.2)  # let the previous client's closes reach the server
    before = await loop.run_in_executor(None, server_connections, server)
    async with client_for(name, alias, url) as client:
        await loops(client, tasks, min(0.3, seconds / 4))
        cpu = time.process_time()
        done, elapsed = await loops(client, tasks, seconds)
        cpu = time.process_time() - cpu
        conns = await loop.run_in_executor(None, server_connections, server) - before
    return {
        "ops": round(done / elapsed),
        "cpu_us": round(cpu / max(done, 1) * 1e6, 1),
        "conns": conns,
    }


async def section_loops(
    args: argparse.Namespace, targets: dict[int, tuple[str, str]], server: RedisServer
) -> dict[str, Any]:
    have_coredis = True
    try:
        import coredis  # noqa: F401
    except ImportError:
        have_coredis = False
    results: dict[str, Any] = {}
    names = [name for name in CLIENTS if have_coredis or name != "coredis"]
    for rtt, (alias, url) in targets.items():
        for tasks in args.tasks:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for round_ in range(args.rounds):
                # Alternate the order, so drift within a round favours nobody.
                for name in names if round_ % 2 == 0 else names[::-1]:
                    figures = await cell(name, alias, url, server, tasks, args.seconds)
                    runs[name].append(figures)
                    print(f"rtt={rtt}ms tasks={tasks} {name}: {figures}", flush=True)
            row: dict[str, Any] = {name: median_of(runs[name]) for name in names}
            if not have_coredis:
                row["coredis"] = None
            results[f"{rtt}ms/{tasks}"] = row
    return {"cells": results, "coredis": have_coredis}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def markdown(cells: dict[str, Any]) -> str:
    """The loops table: commands/s (CPU µs per command, server connections)."""
    lines = [
        "| RTT / tasks | " + " | ".join(CLIENTS) + " | mux / redis-py 8 | mux / ours 64 |",
        "|---|" + "---:|" * (len(CLIENTS) + 2),
    ]
    for key, row in cells.items():
        shown = [
            "n/a" if row.get(name) is None
            else f"{row[name]['ops']:,.0f} ({row[name]['cpu_us']:.0f} µs, {row[name]['conns']:.0f})"
            for name in CLIENTS
        ]  # fmt: skip
        mux = row["multiplexed"]["ops"]
        ratios = [f"{mux / row[base]['ops']:.1f}x" for base in ("redis-py pool 8", "ours pool 64")]
        lines.append(f"| {key} | " + " | ".join(shown + ratios) + " |")
    return "\n".join(lines)


async def section_fairness(targets: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """A 200,000-command burst from one task and a probe GET every 5 ms from another."""
    from redis_pool import aget_redis
    from redis_pool.multiplex import MultiplexedRedis

    out: dict[str, Any] = {}
    for rtt, (alias, _) in targets.items():
        mux = MultiplexedRedis(aget_redis(alias).connection_pool)
        await mux.set("probe", 1)
        baseline = await probe_during(mux, None)
        for kind in ("pipeline", "gather"):
            figures = await probe_during(mux, kind)
            out[f"{rtt}ms/{kind}"] = {"idle_probe_ms": baseline["p50_ms"], **figures}
            print(f"fairness rtt={rtt}ms {kind}: {out[f'{rtt}ms/{kind}']}", flush=True)
        await mux.aclose()
    return out


async def probe_during(mux: Any, burst: str | None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    running = True

    async def probe() -> None:
        while running:
            start = loop.time()
            await mux.get("probe")
            latencies.append(loop.time() - start)
            await asyncio.sleep(0.005)

    pipe = mux.pipeline(transaction=False)
    if burst == "pipeline":  # built before the clock: the caller's own CPU, not ours
        for _ in range(200_000):
            pipe.incr("burst")

    async def bulk() -> None:
        if burst == "pipeline":
            await pipe.execute()
        elif burst == "gather":  # 50,000 callers at once (200,000 take ~25 s here)
            await asyncio.gather(*(mux.incr("burst") for _ in range(50_000)))
        else:
            await asyncio.sleep(0.5)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    latencies.clear()
    start = loop.time()
    await bulk()
    took = loop.time() - start
    running = False
    await prober
    latencies.sort()
    return {
        "burst_s": round(took, 2),
        "probes": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
    }


async def section_cancel(proxy_url: str) -> dict[str, Any]:
    from tests.test_multiplex_faults import cancellation_storm

    start = time.monotonic()
    counts = await cancellation_storm(proxy_url, 10_000, seed=13)
    counts["seconds"] = round(time.monotonic() - start, 2)
    print(f"cancellation storm, 10,000 tasks: {counts}", flush=True)
    return counts


async def section_faults() -> dict[str, Any]:
    """Kill -9 with commands in flight, restart; SIGSTOP with socket_timeout 0.5 s."""
    import redis.asyncio
    from redis.exceptions import RedisError

    from redis_pool.multiplex import MultiplexedRedis

    out: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    server = RedisServer().start()
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        server.url, max_connections=8, socket_timeout=0.5
    )
    mux = MultiplexedRedis(pool)
    try:
        await mux.ping()
        calls = [asyncio.create_task(mux.incr("n")) for _ in range(2000)]
        await asyncio.sleep(0)
        start = loop.time()
        server.kill()
        results = await asyncio.gather(*calls, return_exceptions=True)
        out["kill_failed"] = sum(isinstance(r, RedisError) for r in results)
        out["kill_fail_ms"] = round((loop.time() - start) * 1000, 1)
        replacement = RedisServer(port=server.port)
        await loop.run_in_executor(None, replacement.start)
        start = loop.time()
        while True:
            try:
                await mux.ping()
                break
            except RedisError:
                await asyncio.sleep(0.001)
        out["recovery_after_restart_ms"] = round((loop.time() - start) * 1000, 1)
        assert replacement.proc is not None
        replacement.proc.send_signal(signal.SIGSTOP)
        start = loop.time()
        results = await asyncio.gather(*(mux.get("x") for _ in range(100)), return_exceptions=True)
        out["stall_failed"] = sum(isinstance(r, RedisError) for r in results)
        out["stall_fail_s"] = round(loop.time() - start, 3)
        replacement.proc.send_signal(signal.SIGCONT)
        out["after_stall_ping"] = await mux.ping()
        replacement.cleanup()
    finally:
        await mux.aclose()
        await pool.disconnect()
        server.cleanup()
    print(f"faults: {out}", flush=True)
    return out


def configure(targets: dict[int, tuple[str, str]]) -> None:
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["redis_pool"],
        # pool_timeout: 256 tasks queue for 64 connections longer than the default 2 s
        REDIS_POOL={
            alias: {"url": url, "max_connections": 64, "pool_timeout": 60}
            for alias, url in targets.values()
        },
    )
    import django

    django.setup()


async def main_async(args: argparse.Namespace, server: RedisServer, proxy: Any) -> dict[str, Any]:
    targets = {0: ("direct", server.url)}
    if proxy is not None:
        targets[1] = ("rtt1", proxy.url)
    configure(targets)
    out: dict[str, Any] = {"seconds_per_cell": args.seconds}
    if "loops" in args.sections:
        out["loops"] = await section_loops(args, targets, server)
    if "fairness" in args.sections:
        out["fairness"] = await section_fairness(targets)
    if "cancel" in args.sections and proxy is not None:
        out["cancel"] = await section_cancel(proxy.url)
    if "faults" in args.sections:
        out["faults"] = await section_faults()
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ints: Callable[[str], list[int]] = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per cell")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per cell (median)")
    parser.add_argument("--tasks", type=ints, default=[1, 16, 64, 256], help="task counts")
    parser.add_argument("--rtt", type=ints, default=[0, 1], help="round trips in ms: 0, 1")
    parser.add_argument(
        "--sections", default="loops,fairness,cancel,faults", help="which parts to run"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    args.sections = set(args.sections.split(","))
    with RedisServer() as server:
        proxy = LatencyProxy(server.port, delay_ms=1).start() if 1 in args.rtt else None
        try:
            out = asyncio.run(main_async(args, server, proxy))
        finally:
            if proxy is not None:
                proxy.stop()
    if "loops" in out:
        print(markdown(out["loops"]["cells"]))
    text = json.dumps(out, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
