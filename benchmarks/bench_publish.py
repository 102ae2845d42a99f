"""Cost of stats publishing on requests: publishing on vs off, in the same process and run.

    .venv/bin/python benchmarks/bench_publish.py [--rounds 15] [--requests 2000] [--check]

Starts its own redis-server on a free loopback port. For each publish interval (the
default 2 s, and an aggressive 0.1 s as a worst case) a child process serves Django
requests through the WSGI handler in a loop (the view does one INCR through
``request.redis``), with 1 thread and with 4 threads. Rounds alternate between the monitor
thread running (publishing on) and stopped (off), same pools, same process; the ratios
on / off of wall time and of process CPU time per request (CPU counts the monitor
thread's own work, whichever thread does it) are taken per round, and the medians
reported (only ratios within one run mean anything on shared machines). Target: CPU ratio
<= 1.02 at the default interval ("no measurable cost"). ``--check`` exits 1 above it.

Also reported: how long one publish takes (stats snapshot + JSON + one pipelined round
trip), and the share of one core that is at the interval.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 1.02


def child(args: argparse.Namespace) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.fleet_app"
    os.environ["FLEET_PUBLISH_INTERVAL"] = str(args.interval)
    os.environ["FLEET_MAX_CONNECTIONS"] = "16"
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from redis_pool import get_redis, pool_stats
    from redis_pool.observability import monitor

    handler = WSGIHandler()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/incr/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
    }

    def start_response(status: str, headers: Any) -> None:
        assert status.startswith("200"), status

    def serve(count: int) -> None:
        for _ in range(count):
            for _chunk in handler(dict(environ), start_response):
                pass

    def round_time(threads: int, total: int) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) per request."""
        per = total // threads
        workers = [threading.Thread(target=serve, args=(per,)) for _ in range(threads)]
        start, cpu = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        done = per * threads
        return (time.perf_counter() - start) / done, (time.process_time() - cpu) / done

    get_redis().ping()  # the pool's first connection: starts the monitor
    serve(200)
    results: dict[str, Any] = {}
    for threads in (1, 4):
        walls: dict[str, list[float]] = {"on": [], "off": []}
        cpus: dict[str, list[float]] = {"on": [], "off": []}
        wall_ratios, cpu_ratios = [], []
        for i in range(args.rounds):
            order = ("on", "off") if i % 2 else ("off", "on")
            for state in order:
                if state == "on":
                    monitor.ensure_running()
                    monitor.publish_now()  # at least one publish inside each "on" round
                else:
                    monitor.stop()
                wall, cpu = round_time(threads, args.requests)
                walls[state].append(wall)
                cpus[state].append(cpu)
            wall_ratios.append(walls["on"][-1] / walls["off"][-1])
            cpu_ratios.append(cpus["on"][-1] / cpus["off"][-1])
        results[f"{threads} thread{'s' if threads > 1 else ''}"] = {
            "off_us": round(statistics.median(walls["off"]) * 1e6, 2),
            "on_us": round(statistics.median(walls["on"]) * 1e6, 2),
            "ratio": round(statistics.median(wall_ratios), 4),
            "cpu_off_us": round(statistics.median(cpus["off"]) * 1e6, 2),
            "cpu_on_us": round(statistics.median(cpus["on"]) * 1e6, 2),
            "cpu_ratio": round(statistics.median(cpu_ratios), 4),
        }
    monitor.ensure_running()
    costs = []
    for _ in range(50):
        start = time.perf_counter()
        monitor.publish_now()
        costs.append(time.perf_counter() - start)
    publish_us = statistics.median(costs) * 1e6
    assert pool_stats().publish_errors == 0
    monitor.stop()
    print(
        json.dumps(
            {
                "interval": args.interval,
                "requests": results,
                "publish_us": round(publish_us, 1),
                "core_share_pct": round(100 * publish_us / 1e6 / args.interval, 4),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (median)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a ratio > {TARGET}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    from tests.redis_server import RedisServer

    rows = []
    with RedisServer() as server:
        env = dict(os.environ, FLEET_REDIS_URL=server.url)
        for interval in (2.0, 0.1):
            command = [
                sys.executable,
                __file__,
                "--child",
                f"--interval={interval}",
                f"--rounds={args.rounds}",
                f"--requests={args.requests}",
            ]
            done = subprocess.run(
                command, env=env, cwd=ROOT, capture_output=True, text=True, check=True
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(
        f"{'publish interval':<18}{'load':<11}{'wall off':>10}{'on':>10}{'ratio':>8}"
        f"{'cpu off':>10}{'on':>10}{'ratio':>8}"
    )
    for row in rows:
        for load, r in row["requests"].items():
            print(
                f"{row['interval']:<18g}{load:<11}{r['off_us']:>8.1f}us{r['on_us']:>8.1f}us"
                f"{r['ratio']:>8.3f}{r['cpu_off_us']:>8.1f}us{r['cpu_on_us']:>8.1f}us"
                f"{r['cpu_ratio']:>8.3f}"
            )
    for row in rows:
        print(
            f"one publish: {row['publish_us']:.0f}us = {row['core_share_pct']}% of a core "
            f"at a {row['interval']:g}s interval"
        )
    print(json.dumps({"bench": "publish", "target": TARGET, "results": rows}))
    default = next(row for row in rows if row["interval"] == 2.0)
    over = [load for load, r in default["requests"].items() if r["cpu_ratio"] > TARGET]
    if over:
        print(f"above target {TARGET} at the default interval: {', '.join(over)}", file=sys.stderr)
    return 1 if (args.check and over) else 0


if __name__ == "__main__":
    sys.exit(main())
