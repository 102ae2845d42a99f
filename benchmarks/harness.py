"""What compare.py and soak.py share: a private redis-server, gunicorn, /proc CPU and memory
readings, and the two load generators (wrk, or a bounded Python client when wrk is missing).

Stdlib only, so the scripts run on a fresh checkout with the package's venv.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.redis_server import LOOPBACK, RedisServer, free_port  # noqa: E402

__all__ = ["LOOPBACK", "ROOT", "RedisServer", "free_port"]

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (dead ones included), from /proc."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return sorted(found)


def server_info(server: RedisServer) -> dict[str, str]:
    raw = server.command("INFO").decode(errors="replace")
    info: dict[str, str] = {}
    for line in raw.split("\r\n"):
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            info[key] = value
    return info


def connections_received(server: RedisServer) -> int:
    # INFO's own connection is counted in its reply: callers take differences of two
    # readings and subtract the one connection the second reading made.
    return int(server_info(server)["total_connections_received"])


def redis_pid(server: RedisServer) -> int:
    assert server.proc is not None
    return server.proc.pid


@dataclass
class Gunicorn:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def workers(self) -> list[int]:
        return children(self.proc.pid)


def _gunicorn_supports(flag: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return flag in out


@contextmanager
def gunicorn(
    app: str, env: dict[str, str], workers: int, threads: int, log: Path
) -> Iterator[Gunicorn]:
    """gunicorn gthread serving ``app`` on a free loopback port; stopped on exit."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{LOOPBACK}:{port}",
        "--worker-class", "gthread",
        "--workers", str(workers),
        "--threads", str(threads),
        "--graceful-timeout", "5",
        "--log-level", "warning",
    ]  # fmt: skip
    # gunicorn >= 24 opens a control socket at a fixed path: two runs would collide.
    if _gunicorn_supports("--no-control-socket"):
        cmd.append("--no-control-socket")
    cmd.append(app)
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        server = Gunicorn(proc, port, log)
        try:
            deadline = time.monotonic() + 60
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
            deadline = time.monotonic() + 30
            while len(server.workers) < workers and time.monotonic() < deadline:
                time.sleep(0.05)
            yield server
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _answers(port: int) -> bool:
    try:
        status, _ = http_get(port, "/", timeout=1)
        return status < 500
    except OSError:
        return False


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- load generators ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    p99_ms: float
    tool: str


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str, seconds: float, connections: int, threads: int = 2, script: Path | None = None
) -> LoadResult:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--latency", "--timeout", "10s", url,
    ]  # fmt: skip
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    if total is None or p99 is None:
        raise RuntimeError(f"unparsable wrk output:\n{out}")
    requests = int(total.group(1))
    duration = _ms(total.group(2) + total.group(3)) / 1000
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(n) for n in sock.groups())
    return LoadResult(requests, errors, duration, requests / duration, _ms(p99.group(1)), "wrk")


def run_python_client(
    url: str,
    seconds: float,
    connections: int,
    max_requests: int = 1_000_000,
    paths: list[str] | None = None,
) -> LoadResult:
    """A bounded keep-alive client, one thread per connection: slower than wrk (it shares
    the GIL and the CPUs), so it narrows the gaps between variants, but needs nothing."""
    match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    rotation = paths or [match.group(3)]
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    per_thread = max(1, max_requests // connections)
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = latencies[index]
        try:
            for i in range(per_thread):
                if time.monotonic() >= deadline:
                    return
                start = time.perf_counter()
                try:
                    conn.request("GET", rotation[(index + i) % len(rotation)])
                    response = conn.getresponse()
                    response.read()
                    if response.status >= 400:
                        errors[index] += 1
                except (OSError, http.client.HTTPException):
                    errors[index] += 1
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                mine.append(time.perf_counter() - start)
        finally:
            conn.close()

    start = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    elapsed = time.monotonic() - start
    every = sorted(x for mine in latencies for x in mine)
    p99 = every[min(len(every) - 1, int(0.99 * len(every)))] * 1000 if every else 0.0
    return LoadResult(len(every), sum(errors), elapsed, len(every) / elapsed, p99, "python")


def wrk_rotation_script(paths: list[str], directory: Path) -> Path:
    """A wrk Lua script sending GETs to ``paths`` in turn."""
    script = directory / "rotate.lua"
    quoted = ", ".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        '  return wrk.format("GET", paths[(i % #paths) + 1])\n'
        "end\n"
    )
    return script


def run_load(
    url: str,
    seconds: float,
    connections: int,
    tool: str,
    max_requests: int = 1_000_000,
    paths: list[str] | None = None,
    script: Path | None = None,
) -> LoadResult:
    """``paths`` rotate requests over several URLs (wrk needs ``script`` for that)."""
    if tool == "wrk":
        return run_wrk(url, seconds, connections, script=script)
    return run_python_client(url, seconds, connections, max_requests, paths)


def versions() -> dict[str, str]:
    import django
    import redis

    found = {
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "redis-py": redis.__version__,
        "cpus": str(os.cpu_count()),
    }
    try:
        import hiredis

        found["hiredis"] = hiredis.__version__
    except ImportError:
        found["hiredis"] = "not installed"
    try:
        import gunicorn

        found["gunicorn"] = gunicorn.__version__
    except ImportError:
        found["gunicorn"] = "not installed"
    out = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"v=(\S+)", out)
    found["redis-server"] = match.group(1) if match else "unknown"
    found["load generator"] = "wrk" if have_wrk() else "python (wrk not found)"
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    found["commit"] = git.stdout.strip() or "unknown"
    return found
