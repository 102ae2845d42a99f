"""A loopback TCP proxy that delays every reply byte by a fixed time: a network round trip
on one machine. Runs as its own process, so that its CPU is not the client's:

    python -m tests.latency_proxy TARGET_PORT DELAY_MS [PORT]   (prints its port, serves)

``LatencyProxy(target_port, delay_ms)`` starts and stops one from Python. The whole
delay is added on the way back (server to client), so a round trip gains ``delay_ms``:
split in two halves, each would be rounded up to epoll's 1 ms resolution. Order is
preserved. 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class _Delayed(asyncio.Protocol):
    """One direction's receiving end: what arrives is written to ``peer`` ``delay``
    seconds later, in order (one timer per direction, re-armed for the oldest chunk)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.peer: asyncio.Transport | None = None
        self.transport: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.delay <= 0 and not self.queue:
            if self.peer is not None:
                self.peer.write(data)
            return
        self.queue.append((self.loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self._release)

    def _release(self) -> None:
        self.timer = None
        now = self.loop.time()
        out = []
        while self.queue and self.queue[0][0] <= now:
            out.append(self.queue.popleft()[1])
        if out and self.peer is not None and not self.peer.is_closing():
            self.peer.write(b"".join(out))
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._release)
        elif self.closed and self.peer is not None:
            self.peer.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.queue and self.timer is None and self.peer is not None:
            self.peer.close()


async def _serve(target_port: int, delay: float, listen_port: int = 0) -> None:
    loop = asyncio.get_running_loop()
    dialing: set[asyncio.Task[None]] = set()

    class Inbound(_Delayed):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            transport.pause_reading()  # type: ignore[attr-defined]
            task = loop.create_task(self.dial(transport))  # type: ignore[arg-type]
            dialing.add(task)
            task.add_done_callback(dialing.discard)

        async def dial(self, client: asyncio.Transport) -> None:
            try:
                server, outbound = await loop.create_connection(
                    lambda: _Delayed(delay), LOOPBACK, target_port
                )  # replies are delayed; requests (Inbound(0)) pass at once
            except OSError:
                client.close()
                return
            outbound.peer = client
            self.peer = server
            client.resume_reading()

    server = await loop.create_server(lambda: Inbound(0), LOOPBACK, listen_port)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


class LatencyProxy:
    """A proxy process in front of ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, delay_ms: float, port: int = 0) -> None:
        self.target_port = target_port
        self.delay_ms = delay_ms
        self.proc: subprocess.Popen[str] | None = None
        self.port = port  # 0: a free one

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> LatencyProxy:
        from tests.redis_server import die_with_parent

        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.latency_proxy", str(self.target_port),
             str(self.delay_ms), str(self.port)],
            cwd=root, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError("latency proxy did not start")
        self.port = int(line)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main() -> None:
    target_port, delay_ms = int(sys.argv[1]), float(sys.argv[2])
    listen_port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(target_port, delay_ms / 1000, listen_port))


if __name__ == "__main__":
    main()
