"""A loopback TCP proxy that delays every byte by a fixed time each way: a network round
trip on one machine. Runs as its own process, so that its CPU is not the client's:

    python -m tests.latency_proxy TARGET_PORT DELAY_MS   (prints its port, then serves)

``LatencyProxy(target_port, delay_ms)`` starts and stops one from Python. The delay is
added in each direction (a round trip gains twice ``delay_ms``); order is preserved.
127.0.0.1 only.
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


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: deque[tuple[float, bytes]] = deque()
    ready = asyncio.Event()
    eof = False

    async def send() -> None:
        while True:
            while not queue:
                if eof:
                    return
                ready.clear()
                await ready.wait()
            due, data = queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            queue.append((loop.time() + delay, data))
            ready.set()
    except OSError:
        pass
    eof = True
    ready.set()
    with contextlib.suppress(OSError):
        await sender
    writer.close()


async def _serve(target_port: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(LOOPBACK, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pump(client_r, server_w, delay), _pump(server_r, client_w, delay),
            return_exceptions=True,
        )  # fmt: skip

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


class LatencyProxy:
    """A proxy process in front of ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.target_port = target_port
        self.delay_ms = delay_ms
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> LatencyProxy:
        from tests.redis_server import die_with_parent

        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.latency_proxy", str(self.target_port),
             str(self.delay_ms)],
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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(target_port, delay_ms / 1000))


if __name__ == "__main__":
    main()
