"""How a Django view gets its Redis client, side by side, in one run on one machine.

HTTP: one gunicorn (1 worker, gthread, 8 threads) serves benchmarks/bench_app, whose views
each do INCR + GET with a different way of getting the client; ``wrk`` (or a bounded Python
client when wrk is missing) drives each view in turn, rounds interleaved, medians reported.
No HTTP: acquire a client + one GET in this process, 1 and 8 threads.

Per variant: requests/s, p99 latency, new server connections per request (INFO
total_connections_received deltas), CPU per request of the gunicorn worker and of
redis-server (/proc/<pid>/stat), and the ratio to the module-level redis-py pool.

    .venv/bin/python benchmarks/compare.py            # ~6 min; writes benchmarks/results/
    .venv/bin/python benchmarks/compare.py --quick    # ~40 s smoke run, noisier
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    ROOT,
    LoadResult,
    RedisServer,
    connections_received,
    cpu_seconds,
    gunicorn,
    have_wrk,
    http_get,
    redis_pid,
    run_load,
    versions,
)

RESULTS = ROOT / "benchmarks" / "results"
WORKERS, THREADS, CONNECTIONS = 1, 8, 16
BASELINE = "module"

# (key, how the view gets its client); the key is the view's URL.
HTTP_VARIANTS = [
    ("new", "new `redis.Redis()` per request"),
    ("module", "module-level redis-py pool + client"),
    ("django_redis", "django-redis `get_redis_connection()`"),
    ("cache", "Django `RedisCache` (`incr` + `get`: 3 commands)"),
    ("request_redis", "this app: `request.redis`"),
    ("get_redis", "this app: `get_redis()`"),
    ("noredis", "no Redis at all (HTTP + Django floor)"),
]
DIRECT_VARIANTS = [
    ("new", "new `redis.Redis()` + GET + close"),
    ("module", "module-level client + GET"),
    ("get_redis", "`get_redis()` + GET"),
]


@dataclass
class Sample:
    rps: float
    p99_ms: float
    requests: int
    errors: int
    new_connections: int
    app_cpu_us: float  # per request
    redis_cpu_us: float  # per request


@dataclass
class Row:
    key: str
    label: str
    samples: list[Sample] = field(default_factory=list)
    # Each sample divided by the baseline samples taken just before and just after it.
    ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(getattr(s, name) for s in self.samples)

    def conns_per_request(self) -> float:
        requests = sum(s.requests for s in self.samples)
        return sum(s.new_connections for s in self.samples) / max(1, requests)

    def summary(self) -> dict[str, Any]:
        ratios = self.ratios or [1.0]
        cpu = self.cpu_ratios or [1.0]
        return {
            "variant": self.key,
            "label": self.label,
            "rps": round(self.median("rps"), 1),
            "vs_module": round(statistics.median(ratios), 3),
            "vs_module_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "cpu_vs_module": round(statistics.median(cpu), 3),
            "p99_ms": round(self.median("p99_ms"), 3),
            "new_connections_per_request": round(self.conns_per_request(), 4),
            "new_connections": sum(s.new_connections for s in self.samples),
            "requests": sum(s.requests for s in self.samples),
            "errors": sum(s.errors for s in self.samples),
            "app_cpu_us_per_request": round(self.median("app_cpu_us"), 1),
            "redis_cpu_us_per_request": round(self.median("redis_cpu_us"), 1),
            "rounds_rps": [round(s.rps, 1) for s in self.samples],
        }


def bracketed_rounds(
    keys: list[str], rounds: int, measure: Callable[[str], Sample], rows: dict[str, Row], tag: str
) -> None:
    """Run ``rounds`` rounds of B v1 B v2 ... vN B (B = the baseline): every variant sample
    sits between two baseline samples, and its ratio is taken against their mean. On a
    shared machine the load drifts within seconds; a ratio between neighbours cancels
    most of that drift, a ratio of medians taken minutes apart does not."""
    others = [k for k in keys if k != BASELINE]
    for round_no in range(rounds):
        shift = round_no % len(others)
        order = others[shift:] + others[:shift]  # no variant always first or last
        previous = measure(BASELINE)
        rows[BASELINE].samples.append(previous)
        for key in order:
            sample = measure(key)
            following = measure(BASELINE)
            rows[BASELINE].samples.append(following)
            rows[key].samples.append(sample)
            base_rps = (previous.rps + following.rps) / 2
            base_cpu = (previous.app_cpu_us + following.app_cpu_us) / 2
            rows[key].ratios.append(sample.rps / base_rps)
            if sample.app_cpu_us:
                rows[key].cpu_ratios.append(base_cpu / sample.app_cpu_us)
            print(
                f"  {tag} round {round_no + 1}/{rounds} {key:14} {sample.rps:9.0f}/s "
                f"(module {previous.rps:.0f}, {following.rps:.0f}: x{rows[key].ratios[-1]:.3f})"
                f"  p99 {sample.p99_ms:7.2f} ms  new conns {sample.new_connections}",
                flush=True,
            )
            previous = following


# -- HTTP ------------------------------------------------------------------------------------


def measure_http(
    server: RedisServer, port: int, worker: int, key: str, seconds: float, warmup: float, tool: str
) -> Sample:
    url = f"http://127.0.0.1:{port}/{key}/"
    # Warm-up: connections made, code paths hot; steady state is what we measure.
    run_load(url, warmup, CONNECTIONS, tool)
    conns, app, rcpu = (
        connections_received(server),
        cpu_seconds(worker),
        cpu_seconds(redis_pid(server)),
    )
    result: LoadResult = run_load(url, seconds, CONNECTIONS, tool)
    app_used = cpu_seconds(worker) - app
    redis_used = cpu_seconds(redis_pid(server)) - rcpu
    new_connections = connections_received(server) - conns - 1  # minus this INFO's own
    n = max(1, result.requests)
    return Sample(
        rps=result.rps,
        p99_ms=result.p99_ms,
        requests=result.requests,
        errors=result.errors,
        new_connections=new_connections,
        app_cpu_us=app_used / n * 1e6,
        redis_cpu_us=redis_used / n * 1e6,
    )


def run_http(
    server: RedisServer, rounds: int, seconds: float, warmup: float, tool: str, log: Path
) -> tuple[list[Row], dict[str, Any]]:
    import importlib.util

    variants = [
        (k, label)
        for k, label in HTTP_VARIANTS
        if k != "django_redis" or importlib.util.find_spec("django_redis") is not None
    ]
    rows = {k: Row(k, label) for k, label in variants}
    env = {"DJANGO_SETTINGS_MODULE": "benchmarks.bench_app.settings", "REDIS_URL": server.url}
    app = "benchmarks.bench_app.wsgi:application"
    with gunicorn(app, env, WORKERS, THREADS, log) as gun:
        (worker,) = gun.workers
        for key, _ in variants:  # each view answers before any timing starts
            status, body = http_get(gun.port, f"/{key}/")
            if status != 200:
                raise RuntimeError(f"/{key}/ answered {status}: {body[:200]!r}")
        bracketed_rounds(
            [k for k, _ in variants],
            rounds,
            lambda key: measure_http(server, gun.port, worker, key, seconds, warmup, tool),
            rows,
            "HTTP",
        )
    config = {
        "server": f"gunicorn, {WORKERS} worker, gthread, {THREADS} threads",
        "load": f"{tool}, {CONNECTIONS} connections, {seconds:g} s per sample after "
        f"{warmup:g} s warm-up",
        "rounds": rounds,
    }
    return list(rows.values()), config


# -- no HTTP ---------------------------------------------------------------------------------


def _direct_ops() -> dict[str, Callable[[], object]]:
    from benchmarks.bench_app.clients import MODULE_CLIENT, new_client
    from redis_pool import get_redis

    def new() -> object:
        client = new_client()
        try:
            return client.get("bench:direct")
        finally:
            client.close()

    return {
        "new": new,
        "module": lambda: MODULE_CLIENT.get("bench:direct"),
        "get_redis": lambda: get_redis().get("bench:direct"),
    }


def measure_direct(
    server: RedisServer, op: Callable[[], object], threads: int, seconds: float
) -> Sample:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    cap = 2_000_000 // threads  # bounded even on a very fast machine
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def loop(index: int) -> None:
        mine = latencies[index]
        for _ in range(100):  # warm-up in every thread: its connection exists before we count
            op()
        barrier.wait()
        for _ in range(cap):
            start = time.perf_counter()
            op()
            end = time.perf_counter()
            mine.append(end - start)
            if end >= deadline[0]:
                return

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    while barrier.n_waiting < threads:  # every thread warmed up and parked at the barrier
        time.sleep(0.001)
    conns = connections_received(server)
    rcpu = cpu_seconds(redis_pid(server))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    redis_used = cpu_seconds(redis_pid(server)) - rcpu
    new_connections = connections_received(server) - conns - 1
    every = sorted(x for mine in latencies for x in mine)
    n = max(1, len(every))
    own = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return Sample(
        rps=len(every) / elapsed,
        p99_ms=every[min(n - 1, int(0.99 * n))] * 1000,
        requests=len(every),
        errors=0,
        new_connections=new_connections,
        app_cpu_us=own / n * 1e6,
        redis_cpu_us=redis_used / n * 1e6,
    )


def run_direct(server: RedisServer, rounds: int, seconds: float) -> dict[int, list[Row]]:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_app.settings"
    os.environ["REDIS_URL"] = server.url
    import django

    django.setup()
    ops = _direct_ops()
    results: dict[int, list[Row]] = {}
    for threads in (1, 8):
        rows = {k: Row(k, label) for k, label in DIRECT_VARIANTS}
        bracketed_rounds(
            [k for k, _ in DIRECT_VARIANTS],
            rounds,
            lambda key, n=threads: measure_direct(server, ops[key], n, seconds),
            rows,
            f"{threads} thread(s)",
        )
        results[threads] = list(rows.values())
    from redis_pool import registry

    registry.close_all()
    from benchmarks.bench_app.clients import MODULE_POOL

    MODULE_POOL.disconnect()
    return results


# -- report ----------------------------------------------------------------------------------


def _targets(http: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {row["variant"]: row for row in http}
    checks = []
    for key, name in (("request_redis", "request.redis"), ("get_redis", "get_redis()")):
        row = by[key]
        low, high = row["vs_module_range"]
        checks.append(
            {
                "target": f"{name} >= 0.97x module-level pool (req/s)",
                "measured": f"{row['vs_module']:.3f} (rounds {low:.3f}-{high:.3f})",
                "met": row["vs_module"] >= 0.97,
            }
        )
        # Both are measured against their neighbouring baseline samples: divide the ratios.
        times_new = row["vs_module"] / by["new"]["vs_module"]
        checks.append(
            {
                "target": f"{name} >= 3x new client per request (req/s)",
                "measured": round(times_new, 2),
                "met": times_new >= 3,
            }
        )
        checks.append(
            {
                "target": f"{name}: zero new server connections per request at steady state",
                "measured": row["new_connections"],
                "met": row["new_connections"] == 0,
            }
        )
    return checks


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "### INCR + GET view under load",
        "",
        f"{report['http_config']['server']}; {report['http_config']['load']}; "
        f"{report['http_config']['rounds']} rounds, each variant bracketed by two "
        'module-pool samples. req/s, p99 and CPU are medians; "vs module" is the median '
        "of each sample's ratio to its two neighbours (range over rounds in brackets); "
        '"CPU vs module" is module worker CPU per request / this variant\'s (> 1: cheaper).',
        "",
        "| how the view gets its client | req/s | vs module pool | CPU vs module | p99 ms "
        "| new server conns / request | worker CPU µs / request "
        "| redis-server CPU µs / request | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["http"]:
        low, high = row["vs_module_range"]
        lines.append(
            f"| {row['label']} | {row['rps']:,.0f} | {row['vs_module']:.2f} "
            f"({low:.2f}-{high:.2f}) | {row['cpu_vs_module']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['new_connections_per_request']:.4g} | {row['app_cpu_us_per_request']:,.0f} "
            f"| {row['redis_cpu_us_per_request']:,.0f} | {row['errors']} |"
        )
    for threads, rows in report["direct"].items():
        lines += [
            "",
            f"### Acquire a client + one GET, no HTTP, {threads} thread(s)",
            "",
            f"In one process, {report['direct_config']}.",
            "",
            "| how | ops/s | vs module pool | CPU vs module | p99 ms | new server conns / op "
            "| process CPU µs / op | redis-server CPU µs / op |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            low, high = row["vs_module_range"]
            lines.append(
                f"| {row['label']} | {row['rps']:,.0f} | {row['vs_module']:.2f} "
                f"({low:.2f}-{high:.2f}) | {row['cpu_vs_module']:.2f} "
                f"| {row['p99_ms']:.3f} | {row['new_connections_per_request']:.4g} "
                f"| {row['app_cpu_us_per_request']:,.1f} "
                f"| {row['redis_cpu_us_per_request']:,.1f} |"
            )
    lines += ["", "### Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for check in report["targets"]:
        lines.append(
            f"| {check['target']} | {check['measured']} | {'yes' if check['met'] else 'NO'} |"
        )
    env = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines += [
        "",
        f"Machine: {env}; load average {report['loadavg_before']} before, "
        f"{report['loadavg_after']} after ({report['seconds']} s run).",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds (median).")
    parser.add_argument("--duration", type=float, default=3, help="Seconds per HTTP sample.")
    parser.add_argument("--warmup", type=float, default=1, help="Warm-up seconds per sample.")
    parser.add_argument("--direct-duration", type=float, default=1, help="Seconds, no-HTTP.")
    parser.add_argument(
        "--direct-rounds",
        type=int,
        default=9,
        help="No-HTTP rounds: with 8 threads a sample lands in a fast or a slow GIL "
        "hand-off mode at random, so it needs more rounds than HTTP for a stable median.",
    )
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: a smoke run.")
    parser.add_argument(
        "--skip-direct", action="store_true", help="Only the HTTP part (no-HTTP skipped)."
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="Directory for results.")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.direct_duration, args.direct_rounds = 1, 2, 1, 1
    tool = args.client if args.client != "auto" else ("wrk" if have_wrk() else "python")
    if tool == "wrk" and not have_wrk():
        parser.error("wrk is not installed; use --client python")

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = _loadavg()
    with RedisServer() as server, tempfile.TemporaryDirectory() as tmp:
        print(f"HTTP variants ({tool}):", flush=True)
        rows, config = run_http(
            server, args.rounds, args.duration, args.warmup, tool, Path(tmp) / "gunicorn.log"
        )
        http = [row.summary() for row in rows]
        direct_rows = {}
        if not args.skip_direct:
            print("No-HTTP variants:", flush=True)
            direct_rows = run_direct(server, args.direct_rounds, args.direct_duration)
        direct = {}
        for threads, trows in direct_rows.items():
            direct[threads] = [row.summary() for row in trows]
    report = {
        "command": "python benchmarks/compare.py " + " ".join(argv or sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started),
        "versions": versions(),
        # Other processes on the machine skew everything; say how busy it was.
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "http_config": config,
        "http": http,
        "direct_config": f"{args.direct_rounds} bracketed rounds of {args.direct_duration:g} s, "
        "each thread warmed up (its connection made) before timing",
        "direct": direct,
        "targets": _targets(http),
    }
    report["command"] = report["command"].strip()
    report["versions"]["load generator"] = tool
    text = markdown(report)
    (args.out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "compare.md").write_text(text)
    print()
    print(text)
    print(f"Wrote {args.out / 'compare.json'} and {args.out / 'compare.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
