"""The fleet view of an alias: every live process's published snapshot (``monitor.py``),
the server's own view (``INFO``, ``CLIENT LIST``), and the connection budget.

Read-only: it opens one short-lived connection of its own per alias (named
``redis_poolstats:<host>:<pid>``), never one of the pool's, and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from redis_pool import monitor
from redis_pool.config.alias import PoolConfig
from redis_pool.config.defaults import hostname
from redis_pool.config.keys import STANDALONE
from redis_pool.config.secrets import redact
from redis_pool.registry import get_config

READER_PREFIX = "redis_poolstats:"
POOL_PREFIX = "redis_pool:"
BUSY = 0.8  # in use above this share of max_connections: "busy" (yellow)

# Gauges and counters of a process's pools (sync, and async ones per event loop) that add up.
SUMMED = (
    "max_connections",
    "open",
    "in_use",
    "idle",
    "waiting",
    "created",
    "closed",
    "checkouts",
    "releases",
    "waits",
    "wait_timeouts",
    "exhausted",
    "errors",
    "leaks",
    "high_water",
)
PROCESS_FIELDS = (
    "host",
    "pid",
    "project",
    "program",
    "client_name",
    "pool_class",
    "since",
    "published_at",
    "interval",
    "ttl",
    *SUMMED,
    "wait",
    "hold",
    "connect",
    "leak_detection_threshold",
    "publishes",
    "publish_errors",
)


@dataclass
class ServerView:
    """What the server says. ``None`` where it refused to say (``*_error`` tells why)."""

    version: str | None = None
    connected_clients: int | None = None
    maxclients: int | None = None
    blocked_clients: int | None = None
    rejected_connections: int | None = None
    clients_by_group: dict[str, int] | None = None
    info_error: str | None = None
    client_list_error: str | None = None
    # Not shown: used to match processes and to find aliases sharing one server.
    clients_by_name: dict[str, int] | None = field(default=None, repr=False)
    run_id: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["clients_by_name"], data["run_id"]
        return data


@dataclass
class AliasView:
    alias: str
    address: str
    error: str | None = None  # Redis unreachable: nothing else is known
    note: str | None = None  # something not shown, and why (not an error)
    processes: list[dict[str, Any]] = field(default_factory=list)
    unpublished: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    server: ServerView | None = None
    budget: dict[str, Any] | None = None

    @property
    def exhausted(self) -> bool:
        return any(p["status"] == "exhausted" for p in self.processes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "address": self.address,
            "error": self.error,
            "note": self.note,
            "processes": self.processes,
            "unpublished": self.unpublished,
            "totals": self.totals,
            "server": self.server.public() if self.server is not None else None,
            "budget": self.budget,
        }


def scrub(text: str, config: PoolConfig) -> str:
    """``text`` from a server or a socket error with this alias's credentials blanked.

    Settings are masked where they are shown (``secrets.show``); this covers what the
    outside world says back, which we do not control.
    """
    return redact(text, config.kwargs)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def reader_name() -> str:
    return re.sub(r"\s", "_", f"{READER_PREFIX}{hostname()}:{os.getpid()}")


def group_of(name: str) -> str:
    """The CLIENT LIST group of a client name: its prefix without host and pid."""
    if not name:
        return "(no name)"
    if name.startswith(READER_PREFIX):
        return "redis_poolstats (this command)"
    if name.startswith((POOL_PREFIX, monitor.STATS_CLIENT_PREFIX)):
        parts = name.split(":")
        return ":".join(parts[:3]) if len(parts) >= 5 else name
    return "(other names)"


def _process_row(snapshot: dict[str, Any], now: float, server: ServerView) -> dict[str, Any]:
    row: dict[str, Any] = {name: snapshot.get(name) for name in PROCESS_FIELDS}
    extra = snapshot.get("async_pools") or []
    for pool in extra:
        for name in SUMMED:
            row[name] = (row[name] or 0) + (pool.get(name) or 0)
    row["async_pools"] = len(extra)
    row["age_s"] = round(max(0.0, (row["published_at"] or now) - (row["since"] or now)), 1)
    row["seen_s"] = round(max(0.0, now - (row["published_at"] or now)), 1)
    names = server.clients_by_name
    row["server_connections"] = None if names is None else names.get(row["client_name"], 0)
    limit = row["max_connections"] or 0
    in_use = row["in_use"] or 0
    if limit and (in_use >= limit or row["waiting"]):
        row["status"] = "exhausted"
    elif limit and in_use > BUSY * limit:
        row["status"] = "busy"
    else:
        row["status"] = "ok"
    return row


def _totals(rows: list[dict[str, Any]], unpublished: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {"processes": len(rows)}
    for name in SUMMED:
        totals[name] = sum(r[name] or 0 for r in rows)
    counted = [r["server_connections"] for r in rows if r["server_connections"] is not None]
    totals["server_connections"] = sum(counted) if len(counted) == len(rows) else None
    totals["unpublished_connections"] = sum(u["server_connections"] for u in unpublished)
    return totals


def _info(client: redis.Redis, view: ServerView, config: PoolConfig) -> None:
    try:
        clients = client.info("clients")
        stats = client.info("stats")
        server = client.info("server")
    except RedisError as exc:
        view.info_error = f"INFO refused: {scrub(str(exc), config)}"
        return
    view.version = server.get("redis_version")
    view.run_id = server.get("run_id")
    view.connected_clients = clients.get("connected_clients")
    view.blocked_clients = clients.get("blocked_clients")
    view.maxclients = clients.get("maxclients")
    view.rejected_connections = stats.get("rejected_connections")
    if view.maxclients is None:  # before Redis 7.0 INFO does not say; CONFIG may
        with contextlib.suppress(RedisError, KeyError, ValueError, TypeError):
            view.maxclients = int(str(client.config_get("maxclients")["maxclients"]))


def _client_list(client: redis.Redis, view: ServerView, db: int, config: PoolConfig) -> list[str]:
    """Fills the groups; returns the names of pool connections in ``db`` (this alias's)."""
    try:
        entries = client.client_list()
    except RedisError as exc:
        view.client_list_error = f"CLIENT LIST refused: {scrub(str(exc), config)}"
        return []
    names = [str(e.get("name") or "") for e in entries]
    view.clients_by_name = dict(Counter(n for n in names if n))
    view.clients_by_group = dict(sorted(Counter(group_of(n) for n in names).items()))
    # Only the name and the database: CLIENT LIST also shows each client's ACL user.
    return [
        str(e.get("name"))
        for e in entries
        if str(e.get("name") or "").startswith(POOL_PREFIX) and str(e.get("db")) == str(db)
    ]


def read_alias(alias: str) -> AliasView:
    """This alias's fleet: snapshots, server view. Never raises for Redis being down."""
    config = get_config(alias)
    view = AliasView(alias=alias, address=config.address)
    topology = config.topology
    if topology != STANDALONE:
        view.note = (
            f"not covered: the fleet view covers standalone servers and {alias!r} is a "
            f"{topology} alias (--local shows this process's pools)"
        )
        return view
    client = monitor.stats_client(config, reader_name())
    raw: list[Any] = []
    try:
        try:
            members = client.zrange(monitor.index_key(alias), 0, -1)
            keys = [f"{monitor.KEY_PREFIX}{alias}:{_text(m)}" for m in members]
            raw = client.mget(keys) if keys else []
        except ResponseError as exc:  # e.g. an ACL without access to these keys
            view.note = f"reading {monitor.KEY_PREFIX}{alias}:* refused: {scrub(str(exc), config)}"
        server = ServerView()
        _info(client, server, config)
        pool_names = _client_list(client, server, int(config.kwargs.get("db") or 0), config)
    except RedisError as exc:
        view.error = f"Redis unreachable: {type(exc).__name__}: {scrub(str(exc), config)}"
        return view
    finally:
        client.connection_pool.disconnect()
    now = time.time()
    rows = []
    for value in raw:
        if value is None:  # expired between ZRANGE and MGET: that process is gone
            continue
        try:
            snapshot = json.loads(value)
        except ValueError:
            continue
        if isinstance(snapshot, dict):
            rows.append(_process_row(snapshot, now, server))
    rows.sort(key=lambda r: (str(r["host"]), int(r["pid"] or 0)))
    listed = {r["client_name"] for r in rows}
    unlisted = Counter(
        name for name in pool_names if name.split(":")[2:3] == [alias] and name not in listed
    )
    view.processes = rows
    view.unpublished = [
        {"client_name": name, "server_connections": count}
        for name, count in sorted(unlisted.items())
    ]
    view.server = server
    view.totals = _totals(rows, view.unpublished)
    return view


def budget(views: list[AliasView]) -> None:
    """Fill ``budget`` of each view: per server (aliases sharing one add up), the fleet at
    its limits plus everything else connected now, against ``maxclients``."""
    groups: dict[str, list[AliasView]] = {}
    for view in views:
        if view.server is None:
            continue
        groups.setdefault(view.server.run_id or view.alias, []).append(view)
    for members in groups.values():
        server = members[0].server
        assert server is not None
        max_connections = sum(v.totals["max_connections"] for v in members)
        open_now = sum(v.totals["open"] for v in members)
        stats_connections = sum(v.totals["processes"] for v in members)
        others = None
        worst = None
        if server.connected_clients is not None:
            # Minus this reader's own connection, which INFO counted.
            others = max(0, server.connected_clients - open_now - stats_connections - 1)
            worst = max_connections + stats_connections + others
        maxclients = server.maxclients
        status = "unknown"
        used_pct = None
        if worst is not None and maxclients:
            used_pct = round(100 * worst / maxclients, 1)
            status = "exceeded" if worst > maxclients else "warning" if used_pct > 80 else "ok"
        data = {
            "aliases": [v.alias for v in members],
            "pools": stats_connections,
            "max_connections": max_connections,
            "stats_connections": stats_connections,
            "other_clients": others,
            "worst_case": worst,
            "maxclients": maxclients,
            "used_pct": used_pct,
            "status": status,
        }
        for view in members:
            view.budget = data


def read_fleet(aliases: list[str]) -> list[AliasView]:
    views = [read_alias(alias) for alias in aliases]
    budget(views)
    return views
