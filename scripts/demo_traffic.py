#!/usr/bin/env python
"""Send a bounded burst of concurrent HTTP traffic to the demo project (loopback only).

Used by ``scripts/demo``; also handy on its own::

    python scripts/demo_traffic.py --base-url http://127.0.0.1:8000 --threads 16 --requests 200

Each thread sends ``--requests`` GETs, cycling over the demo endpoints, and stops early when
``--deadline`` seconds have passed.  Prints throughput, latency percentiles and status counts
per endpoint.  Exit status: 0 when every request got an expected answer (200, or 429 from
/ratelimit/) and all of them were sent; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import ipaddress
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_PATHS = ["/hits/", "/incr-get/", "/ratelimit/", "/cached/", "/session/", "/"]
# 429 is the limiter doing its job, not an error.
EXPECTED_STATUSES: dict[str, set[int]] = {"/ratelimit/": {200, 429}}


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    sent: int = 0
    max_hits: int = 0
    max_visits: int = 0  # the highest /session/ counter: one visitor's requests

    def record(self, path: str, outcome: str, elapsed: float, error: str | None) -> None:
        with self.lock:
            self.sent += 1
            self.statuses.setdefault(path, Counter())[outcome] += 1
            self.latencies.append(elapsed)
            if error is not None:
                self.errors[path] += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(f"{path}: {error}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe(body: bytes) -> str:
    """A short, one-line description of a response body (the <title> of an HTML page)."""
    text = body.decode("utf-8", "replace")
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    text = " ".join(text.split())
    return repr(text[:120])


def check_body(path: str, status: int, body: bytes, stats: Stats) -> str | None:
    """Light validation of what each endpoint returns; a string describes a problem."""
    try:
        if path == "/incr-get/" and status == 200:
            int(body)
        elif path == "/hits/" and status == 200:
            hits = int(json.loads(body)["hits"])
            with stats.lock:
                stats.max_hits = max(stats.max_hits, hits)
        elif path == "/cached/" and status == 200:
            int(json.loads(body)["total"])
        elif path == "/session/" and status == 200:
            visits = int(json.loads(body)["visits"])
            with stats.lock:
                stats.max_visits = max(stats.max_visits, visits)
        elif path == "/ratelimit/":
            data = json.loads(body)
            if data["allowed"] != (status == 200):
                return f"'allowed' is {data['allowed']} with status {status}"
    except (ValueError, KeyError, TypeError) as exc:
        return f"unexpected body {body[:80]!r}: {exc}"
    return None


def worker(
    base_url: str,
    paths: list[str],
    offset: int,
    count: int,
    deadline: float,
    timeout: float,
    stats: Stats,
) -> None:
    # No proxies: a stray http_proxy in the environment must not route loopback traffic.
    # A cookie jar per thread: each thread is one visitor, whose /session/ counter climbs.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    )
    for i in range(count):
        if time.monotonic() >= deadline:
            return
        path = paths[(offset + i) % len(paths)]
        error: str | None = None
        start = time.perf_counter()
        try:
            with opener.open(base_url + path, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
            exc.close()
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets are all OSError
            elapsed = time.perf_counter() - start
            # URLError wraps the interesting part (refused, reset, timed out...).
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            kind = type(reason if isinstance(reason, BaseException) else exc).__name__
            stats.record(path, kind, elapsed, f"{kind}: {exc}")
            continue
        elapsed = time.perf_counter() - start
        if status not in EXPECTED_STATUSES.get(path, {200}):
            error = f"HTTP {status}: {describe(body)}"
        else:
            error = check_body(path, status, body, stats)
        stats.record(path, str(status), elapsed, error)


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="per thread")
    parser.add_argument("--deadline", type=float, default=40.0, help="seconds for the whole run")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--path", action="append", dest="paths", help=f"repeatable; default {DEFAULT_PATHS}"
    )
    args = parser.parse_args(argv)

    base_url = args.base_url.rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname or not is_loopback(parts.hostname):
        parser.error("--base-url must be http:// on a loopback address")
    if args.threads < 1 or args.requests < 1 or args.deadline <= 0:
        parser.error("--threads, --requests and --deadline must be positive")
    paths: list[str] = args.paths or DEFAULT_PATHS

    stats = Stats()
    planned = args.threads * args.requests
    print(
        f"[traffic] {args.threads} threads x {args.requests} requests over {', '.join(paths)}"
        f" -> {base_url} (deadline {args.deadline:g}s)",
        flush=True,
    )
    started = time.monotonic()
    deadline = started + args.deadline
    threads = [
        threading.Thread(
            target=worker,
            args=(base_url, paths, n, args.requests, deadline, args.timeout, stats),
            name=f"traffic-{n}",
            daemon=True,  # a hung request must not keep the process alive past the deadline
        )
        for n in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline + args.timeout - time.monotonic()))
    elapsed = time.monotonic() - started
    hung = sum(thread.is_alive() for thread in threads)

    with stats.lock:
        latencies = sorted(stats.latencies)
        sent, errors = stats.sent, sum(stats.errors.values())
        print(
            f"[traffic] {sent}/{planned} requests in {elapsed:.2f}s = {sent / elapsed:.0f} req/s;"
            f" latency p50 {percentile(latencies, 50) * 1000:.1f}ms"
            f" p95 {percentile(latencies, 95) * 1000:.1f}ms"
            f" p99 {percentile(latencies, 99) * 1000:.1f}ms"
            f" max {(latencies[-1] if latencies else 0) * 1000:.1f}ms"
        )
        for path in paths:
            counts = stats.statuses.get(path, Counter())
            shown = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "-"
            print(f"[traffic]   {path:<12} {shown}")
        if stats.max_hits:
            print(f"[traffic] highest /hits/ counter seen: {stats.max_hits}")
        if stats.max_visits:
            print(
                f"[traffic] highest /session/ visit count of one visitor: {stats.max_visits} "
                "(sessions in Django's cache, on the alias's pool)"
            )
        for sample in stats.error_samples:
            print(f"[traffic] error: {sample}", file=sys.stderr)

    failed = False
    if errors:
        print(f"[traffic] FAILED: {errors} request(s) got errors", file=sys.stderr)
        failed = True
    if sent < planned:
        print(
            f"[traffic] FAILED: only {sent} of {planned} requests sent before the deadline"
            + (f" ({hung} thread(s) still stuck)" if hung else ""),
            file=sys.stderr,
        )
        failed = True
    if not failed:
        print("[traffic] OK: no errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
