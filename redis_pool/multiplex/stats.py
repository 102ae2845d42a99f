"""The snapshot a multiplexed client reports, shaped for the registry and fleet views."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class MultiplexStats:
    """One multiplexed client (one alias on one event loop) at one moment."""

    alias: str | None
    pid: int
    address: str | None
    connections: int  # shared connections open now (0 or 1)
    connects: int  # times the shared connection was opened (reconnects included)
    in_flight: int  # commands written whose reply has not been read yet
    queued: int  # commands accepted but not written yet (the next batch)
    waiting: int  # callers waiting for an in-flight slot (backpressure)
    max_in_flight: int
    commands: int  # commands written in total
    batches: int  # writes in total; commands / batches is the mean batch size
    max_batch: int
    dropped_replies: int  # replies read and dropped because their caller was cancelled
    failed: int  # commands failed by a broken or stalled shared connection
    timeouts: int  # stalls detected (no reply for socket_timeout)
    dedicated_in_use: int  # connections of the pool lent to unshareable commands now
    dedicated_max: int | None

    @property
    def mean_batch(self) -> float:
        return self.commands / self.batches if self.batches else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean_batch"] = round(self.mean_batch, 2)
        return data
