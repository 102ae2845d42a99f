"""Would a multiplexed connection shared by a process's threads pay? A measurement, not a
feature: a minimal sync multiplexer (below) against redis-py's ``BlockingConnectionPool``
with one connection per thread, threads looping SET+GET.

    .venv/bin/python benchmarks/bench_multiplex_sync.py [--seconds 2] [--threads 1,16,64]

The multiplexer: a caller appends its packed command and a waiter under a lock; the first
caller to find no write in progress writes everything queued (flat combining); one reader
thread reads replies in order and wakes each waiter. redis-py's sync ``Connection`` does
the handshake, encoding and parsing. No response callbacks (raw replies): that flatters it
by about a microsecond per command. RTT 0 is direct; RTT 1 ms goes through
tests/latency_proxy.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.latency_proxy import LatencyProxy  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


class _Waiter:
    __slots__ = ("lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.value: Any = None


class SyncMultiplexer:
    """One connection shared by threads: batched writes, in-order replies."""

    def __init__(self, url: str) -> None:
        pool = redis.ConnectionPool.from_url(url)
        self.conn = pool.make_connection()
        self.conn.connect()
        self.sock = self.conn._sock
        self.lock = threading.Lock()
        self.queue: list[bytes] = []
        self.pending: deque[_Waiter] = deque()
        self.writing = False
        self.stopped = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def execute(self, *args: Any) -> Any:
        packed = self.conn.pack_command(*args)
        waiter = _Waiter()
        with self.lock:
            self.queue += packed
            self.pending.append(waiter)  # same order as the bytes: both under the lock
            if self.writing:
                packed = []
            else:
                self.writing = True
        if packed:
            self._write()
        waiter.lock.acquire()
        return waiter.value

    def _write(self) -> None:
        while True:
            with self.lock:
                data, self.queue = self.queue, []
                if not data:
                    self.writing = False
                    return
            assert self.sock is not None
            self.sock.sendall(b"".join(data))

    def _read(self) -> None:
        while not self.stopped:
            try:
                value = self.conn.read_response()
            except Exception:
                return
            waiter = self.pending.popleft()
            waiter.value = value
            waiter.lock.release()

    def close(self) -> None:
        self.stopped = True
        self.conn.disconnect()


def run_threads(execute: Any, threads: int, seconds: float) -> tuple[int, float, float]:
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def one(i: int) -> None:
        key = f"sync:{i}"
        while time.monotonic() < stop:
            execute("SET", key, i)
            execute("GET", key)
            counts[i] += 2

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    cpu, start = time.process_time(), time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    done = sum(counts)
    return done, elapsed, cpu


def cell(kind: str, url: str, threads: int, seconds: float) -> dict[str, Any]:
    if kind == "pool":
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=threads)
        client = redis.Redis(connection_pool=pool)
        execute: Any = client.execute_command
        run_threads(execute, threads, 0.2)
        done, elapsed, cpu = run_threads(execute, threads, seconds)
        pool.disconnect()
    else:
        mux = SyncMultiplexer(url)
        run_threads(mux.execute, threads, 0.2)
        done, elapsed, cpu = run_threads(mux.execute, threads, seconds)
        mux.close()
    return {"ops": round(done / elapsed), "cpu_us": round(cpu / max(done, 1) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per cell")
    parser.add_argument("--threads", default="1,16,64", help="thread counts")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with RedisServer() as server, LatencyProxy(server.port, delay_ms=1) as proxy:
        for rtt, url in ((0, server.url), (1, proxy.url)):
            for threads in (int(x) for x in args.threads.split(",")):
                row = {kind: cell(kind, url, threads, args.seconds) for kind in ("pool", "mux")}
                row["ratio"] = round(row["mux"]["ops"] / row["pool"]["ops"], 2)  # type: ignore[assignment]
                out[f"{rtt}ms/{threads}"] = row
                print(f"rtt={rtt}ms threads={threads}: {row}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
