"""Soak: >= 100,000 requests through the example project (testproject/) under gunicorn.

Checks what a long run would reveal and a short test cannot: worker memory growth after
warm-up, and the number of Redis connections the workers hold staying constant (no churn,
no leak). Bounded: stops at --requests or --max-seconds, whichever comes first.

    .venv/bin/python benchmarks/soak.py                  # 100,000 requests, ~1-2 min
    .venv/bin/python benchmarks/soak.py --requests 300000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    ROOT,
    RedisServer,
    connections_received,
    gunicorn,
    have_wrk,
    http_get,
    rss_bytes,
    run_load,
    server_info,
    versions,
    wrk_rotation_script,
)

RESULTS = ROOT / "benchmarks" / "results"
PATHS = ["/hits/", "/incr-get/", "/ratelimit/", "/health/", "/"]
WORKERS, THREADS, CONNECTIONS = 2, 4, 16
NAME_PREFIX = "redis_pool:testproject:"  # the default client_name of the project's pools
MB = 1024 * 1024


def pool_connections(server: RedisServer) -> int:
    return len(server.clients_named(NAME_PREFIX))


def snapshot(server: RedisServer, workers: list[int]) -> dict[str, Any]:
    return {
        "rss_mb": [round(rss_bytes(pid) / MB, 2) for pid in workers],
        "pool_connections": pool_connections(server),
        "connected_clients": int(server_info(server)["connected_clients"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="Requests after warm-up.")
    parser.add_argument("--warmup", type=float, default=20, help="Minimum warm-up seconds.")
    parser.add_argument(
        "--stable-samples",
        type=int,
        default=5,
        help="Warm-up ends once this many 2 s samples in a row saw the same pool size.",
    )
    parser.add_argument(
        "--max-warmup", type=float, default=60, help="Warm-up ends here even if pools grow."
    )
    parser.add_argument("--chunk", type=float, default=5, help="Seconds between samples.")
    parser.add_argument("--max-seconds", type=float, default=600, help="Hard stop.")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Directory for results.")
    parser.add_argument(
        "--max-growth-mb", type=float, default=5, help="Allowed RSS growth per worker."
    )
    args = parser.parse_args(argv)
    tool = args.client if args.client != "auto" else ("wrk" if have_wrk() else "python")
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    with RedisServer() as server, tempfile.TemporaryDirectory() as tmp:
        env = {
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "PYTHONPATH": str(ROOT / "testproject"),
            "REDIS_URL": server.url,
            "DJANGO_SQLITE_PATH": os.path.join(tmp, "db.sqlite3"),
            # Every request comes from 127.0.0.1: keep /ratelimit/ answering 200.
            "DEMO_RATELIMIT_LIMIT": str(10**9),
        }
        script = wrk_rotation_script(PATHS, Path(tmp)) if tool == "wrk" else None
        app = "testproject.wsgi:application"
        with gunicorn(app, env, WORKERS, THREADS, Path(tmp) / "gunicorn.log") as gun:
            workers = gun.workers
            for path in PATHS:
                status, body = http_get(gun.port, path)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
            url = f"http://127.0.0.1:{gun.port}/"
            at_start = snapshot(server, workers)
            print(f"started: {at_start}", flush=True)

            # Warm-up lasts --warmup seconds and then until the pools stop growing: each
            # worker opens connections as its threads first overlap, up to threads x aliases.
            warm_requests, counts_seen, warm_start = 0, [], time.monotonic()
            while time.monotonic() - warm_start < args.max_warmup:
                warm = run_load(url, 2, CONNECTIONS, tool, paths=PATHS, script=script)
                warm_requests += warm.requests
                counts_seen.append(pool_connections(server))
                recent = counts_seen[-args.stable_samples :]
                stable = len(recent) == args.stable_samples and len(set(recent)) == 1
                if time.monotonic() - warm_start >= args.warmup and stable:
                    break
            warm_seconds = time.monotonic() - warm_start
            after_warmup = snapshot(server, workers)
            received = connections_received(server)
            print(f"after warm-up ({warm_requests} requests): {after_warmup}", flush=True)

            samples: list[dict[str, Any]] = []
            total = errors = 0
            soak_start = time.monotonic()
            while total < args.requests and time.monotonic() - started < args.max_seconds:
                chunk = run_load(url, args.chunk, CONNECTIONS, tool, paths=PATHS, script=script)
                total += chunk.requests
                errors += chunk.errors
                sample = snapshot(server, workers) | {
                    "requests": total,
                    "rps": round(chunk.rps),
                    "p99_ms": round(chunk.p99_ms, 2),
                }
                samples.append(sample)
                print(f"  {sample}", flush=True)
            soak_seconds = time.monotonic() - soak_start
            # Each snapshot made two connections (CLIENT LIST, INFO), this reading one.
            new_connections = connections_received(server) - received - 2 * len(samples) - 1
            assert gun.workers == workers, "a worker was restarted during the soak"
        log = (Path(tmp) / "gunicorn.log").read_text(errors="replace")

    final = samples[-1] if samples else after_warmup
    growth = [
        round(end - begin, 2)
        for begin, end in zip(after_warmup["rss_mb"], final["rss_mb"], strict=True)
    ]
    counts = [s["pool_connections"] for s in samples]
    verdict = {
        "requests >= target": total >= args.requests,
        "zero errors": errors == 0,
        f"RSS growth per worker after warm-up <= {args.max_growth_mb:g} MB": max(growth)
        <= args.max_growth_mb,
        "pool connections constant after warm-up": bool(counts)
        and min(counts) == max(counts) == after_warmup["pool_connections"],
        "pool connections within workers x threads x aliases": max(counts, default=0)
        <= WORKERS * THREADS * 2,
        "zero new server connections after warm-up": new_connections == 0,
    }
    report = {
        "command": ("python benchmarks/soak.py " + " ".join(argv or sys.argv[1:])).strip(),
        "versions": versions(),
        "server": f"gunicorn, {WORKERS} workers, gthread, {THREADS} threads; "
        f"{tool}, {CONNECTIONS} connections; paths {', '.join(PATHS)}",
        "warmup_requests": warm_requests,
        "warmup_seconds": round(warm_seconds, 1),
        "warmup_pool_connections": counts_seen,
        "pool_connection_bound": WORKERS * THREADS * 2,  # two aliases per worker
        "requests": total,
        "errors": errors,
        "seconds": round(soak_seconds, 1),
        "rps": round(total / soak_seconds) if soak_seconds else 0,
        "at_start": at_start,
        "after_warmup": after_warmup,
        "final": final,
        "rss_growth_mb": growth,
        "new_server_connections_after_warmup": new_connections,
        "samples": samples,
        "verdict": verdict,
        "gunicorn_errors": [line for line in log.splitlines() if "Error" in line][:20],
    }
    (args.out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Soak: {total:,} requests in {soak_seconds:.0f} s ({report['rps']:,} req/s), "
        f"{errors} errors, after a warm-up of {warm_requests:,} requests in {warm_seconds:.0f} s "
        f"(pool connections during warm-up: {counts_seen}). {report['server']}.",
        "",
        "| | start | after warm-up | end |",
        "|---|---:|---:|---:|",
        f"| worker RSS MB | {at_start['rss_mb']} | {after_warmup['rss_mb']} | {final['rss_mb']} |",
        f"| pool connections on the server | {at_start['pool_connections']} "
        f"| {after_warmup['pool_connections']} | {final['pool_connections']} |",
        "",
        f"RSS growth per worker after warm-up: {growth} MB. Pool connections over "
        f"{len(counts)} samples: min {min(counts, default=0)}, max {max(counts, default=0)}. "
        f"New server connections after warm-up: {new_connections}. Bound: "
        f"{WORKERS} workers x {THREADS} threads x 2 aliases = {WORKERS * THREADS * 2}.",
        "",
        *(f"- {'yes' if ok else 'NO'}: {name}" for name, ok in verdict.items()),
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    text = "\n".join(lines)
    (args.out / "soak.md").write_text(text)
    print()
    print(text)
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
