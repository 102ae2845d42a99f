"""``manage.py redis_poolstats``: the Redis connections of every live process, per alias.

Each process publishes its pools' snapshot (``monitor.py``); this command reads them and
the server's own view (``fleet.py``). ``--local`` shows only this process's pools.

Exit status (README, Pool statistics): 0 all well; 1 bad arguments or alias; 3 Redis unreachable
for an alias; 4 a pool is exhausted; 5 the connection budget is exceeded. With several,
the first of 3, 4, 5. ``--watch``: runs until interrupted, then 0.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import RedisError

from redis_pool.aio import async_multiplex_stats
from redis_pool.config.defaults import hostname
from redis_pool.config.keys import STANDALONE
from redis_pool.exceptions import AliasNotFound
from redis_pool.observability import fleet
from redis_pool.registry import (
    aliases,
    get_config,
    get_redis,
    node_stats,
    pool_stats,
)

SCHEMA = 1
UNREACHABLE, EXHAUSTED, OVER_BUDGET = 3, 4, 5
CLEAR = "\x1b[H\x1b[2J"


def _positive(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(value)
    return seconds


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def _mux_line(mux: dict[str, Any]) -> str:
    """One multiplexed client (one event loop): its shared connection and dedicated ones."""
    return (
        f"{_num(mux.get('connections'))} shared connection, {_num(mux.get('in_flight'))} "
        f"in flight, {_num(mux.get('batches'))} batches, mean batch "
        f"{_num(mux.get('mean_batch'))}, dedicated {_num(mux.get('dedicated_in_use'))} in "
        f"use of {_num(mux.get('dedicated_max'))}"
    )


class Command(BaseCommand):
    help = (
        "Show the Redis connection pools of every live process using this project, per "
        "alias, with the server's view and the connection budget (--local: this process)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print JSON (schema: README, Pool statistics).",
        )
        parser.add_argument(
            "--alias", action="append", metavar="NAME", help="Only this alias (repeatable)."
        )
        parser.add_argument(
            "--local",
            action="store_true",
            help="Only this process's own pools (and a PING), not the fleet.",
        )
        parser.add_argument(
            "--watch",
            type=_positive,
            metavar="SECONDS",
            help="Refresh every SECONDS until interrupted (Ctrl-C exits with status 0).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        selected: list[str] = options["alias"] or aliases()
        for alias in selected:
            try:
                get_config(alias)
            except (AliasNotFound, ImproperlyConfigured) as exc:
                raise CommandError(str(exc)) from None
        render = self._local if options["local"] else self._fleet
        as_json: bool = options["json"]
        if options["watch"] is None:
            code, message = render(selected, as_json, indent=2)
            if code:
                raise CommandError(message, returncode=code)
            return
        try:
            while True:
                if not as_json and self.stdout.isatty():
                    self.stdout.write(CLEAR, ending="")
                render(selected, as_json, indent=None)
                if not as_json:
                    self.stdout.write("")
                self.stdout.flush()
                time.sleep(options["watch"])
        except KeyboardInterrupt:
            return

    # -- the fleet -----------------------------------------------------------------------
    def _fleet(self, selected: list[str], as_json: bool, indent: int | None) -> tuple[int, str]:
        views = fleet.read_fleet(selected)
        down = [v.alias for v in views if v.error]
        exhausted = [v.alias for v in views if v.exhausted]
        over = [v.alias for v in views if v.budget and v.budget["status"] == "exceeded"]
        if down:
            code, message = UNREACHABLE, f"Redis unreachable for alias(es): {', '.join(down)}."
        elif exhausted:
            code, message = EXHAUSTED, f"Pool exhausted for alias(es): {', '.join(exhausted)}."
        elif over:
            code = OVER_BUDGET
            message = f"Connection budget exceeded for alias(es): {', '.join(over)}."
        else:
            code, message = 0, ""
        if as_json:
            document = {
                "schema": SCHEMA,
                "view": "fleet",
                "generated_at": round(time.time(), 3),
                "host": hostname(),
                "pid": os.getpid(),
                "exit_code": code,
                "aliases": [v.as_dict() for v in views],
            }
            self.stdout.write(json.dumps(document, indent=indent, sort_keys=True))
        else:
            for view in views:
                self._fleet_table(view)
        return code, message

    def _fleet_table(self, view: fleet.AliasView) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"{view.alias}  {view.address}"))
        if view.error:
            self.stdout.write(self.style.ERROR(f"  {view.error}"))
            return
        if view.note:
            self.stdout.write(self.style.WARNING(f"  {view.note}"))
        if view.server is None:
            return
        rows = [(_process_cells(p), str(p["status"])) for p in view.processes]
        total = _total_cells(view.totals)
        widths = [
            max(len(_HEADER[i]), *(len(r[0][i]) for r in rows), len(total[i]))
            for i in range(len(_HEADER))
        ]
        self.stdout.write(_line(_HEADER, widths))
        if not rows:
            self.stdout.write("  (no process has published: none connected, or publishing is off)")
        for row_cells, status in rows:
            text = _line(row_cells, widths)
            if status == "exhausted":
                text = self.style.ERROR(text)
            elif status == "busy":
                text = self.style.WARNING(text)
            self.stdout.write(text)
        self.stdout.write(_line(total, widths))
        for p in view.processes:
            for mux in p.get("async_multiplex") or ():
                self.stdout.write(f"  {p['host']}:{p['pid']} multiplexed  {_mux_line(mux)}")
        for item in view.unpublished:
            self.stdout.write(
                self.style.WARNING(
                    f"  not publishing: {item['client_name']} "
                    f"({item['server_connections']} connections)"
                )
            )
        self._server(view)

    def _server(self, view: fleet.AliasView) -> None:
        server = view.server
        assert server is not None
        if server.info_error:
            self.stdout.write(self.style.WARNING(f"  server  {server.info_error}"))
        else:
            self.stdout.write(
                f"  server  {server.name or 'Redis'} {server.version}: "
                f"{_num(server.connected_clients)} clients connected, "
                f"maxclients {_num(server.maxclients)}, blocked "
                f"{_num(server.blocked_clients)}, rejected {_num(server.rejected_connections)}"
            )
        if server.client_list_error:
            self.stdout.write(
                self.style.WARNING(
                    f"          {server.client_list_error}: per-process server counts and "
                    "connections of processes not publishing are not shown."
                )
            )
        elif server.clients_by_group:
            groups = ", ".join(f"{g} {n}" for g, n in server.clients_by_group.items())
            self.stdout.write(f"          clients by name: {groups}")
        b = view.budget
        if b is None:
            return
        text = (
            f"  budget  {b['max_connections']} max_connections + {b['stats_connections']} stats"
            f" + {_num(b['other_clients'])} other clients = {_num(b['worst_case'])} of "
            f"maxclients {_num(b['maxclients'])}"
        )
        if b["used_pct"] is not None:
            text += f" ({b['used_pct']}%)"
        text += f": {b['status']}"
        if len(b["aliases"]) > 1:
            text += f" (aliases {', '.join(b['aliases'])} share this server)"
        if b["status"] == "exceeded":
            text = self.style.ERROR(text + ": the fleet at its limits would exhaust the server")
        elif b["status"] in ("warning", "unknown"):
            text = self.style.WARNING(text)
        self.stdout.write(text)

    # -- this process only ---------------------------------------------------------------
    def _local(self, selected: list[str], as_json: bool, indent: int | None) -> tuple[int, str]:
        rows: list[dict[str, Any]] = []
        down: list[str] = []
        exhausted: list[str] = []
        for alias in selected:
            try:
                start = time.perf_counter()
                get_redis(alias).ping()
                ping: float | None = round((time.perf_counter() - start) * 1000, 3)
                error = None
            except RedisError as exc:
                config = get_config(alias)
                ping, error = None, f"{type(exc).__name__}: {fleet.scrub(str(exc), config)}"
                down.append(alias)
            stats = pool_stats(alias).as_dict()
            stats["async_multiplex"] = [
                {**m.as_dict(), "alias": alias, "address": get_config(alias).address}
                for m in async_multiplex_stats(alias)
            ]
            stats["ping_ms"] = ping
            stats["error"] = error
            pools = [stats]
            if get_config(alias).topology != STANDALONE:
                # Sentinel: the master's and the replicas' pools; Cluster: one per node
                # (stats above adds them up). README: Sentinel, Cluster.
                stats["nodes"] = [node.as_dict() for node in node_stats(alias)]
                pools = stats["nodes"]
            if any(p["in_use"] >= p["max_connections"] or p["waiting"] for p in pools):
                exhausted.append(alias)
            rows.append(stats)
        if as_json:
            document = {"schema": SCHEMA, "view": "local", "aliases": rows}
            self.stdout.write(json.dumps(document, indent=indent, sort_keys=True))
        else:
            for row in rows:
                self._local_table(row, row["alias"] in exhausted)
        if down:
            return UNREACHABLE, f"Redis unreachable for alias(es): {', '.join(down)}."
        if exhausted:
            return EXHAUSTED, f"Pool exhausted for alias(es): {', '.join(exhausted)}."
        return 0, ""

    def _local_table(self, row: dict[str, Any], exhausted: bool) -> None:
        self.stdout.write(
            self.style.MIGRATE_HEADING(f"{row['alias']}  {row['address']}  (pid {row['pid']})")
        )
        usage = f"{row['in_use']} in use, {row['idle']} idle, max {row['max_connections']}"
        if exhausted:
            usage = self.style.ERROR(usage + ": exhausted")
        lines = [
            f"pool         {row['pool_class']}",
            f"connections  {usage}",
            f"peak         {row['high_water']} in use; {row['waiting']} waiting now",
            f"since start  {row['created']} created, {row['closed']} closed, "
            f"{row['checkouts']} checkouts, {row['waits']} waited, {row['exhausted']} "
            f"exhausted, {row['errors']} errors, {row['leaks']} leaks",
            f"hold         mean {row['hold']['mean_ms']} ms, p95 {row['hold']['p95_ms']} ms, "
            f"max {row['hold']['max_ms']} ms",
            f"wait         {row['wait']['count']} waited, mean {row['wait']['mean_ms']} ms, "
            f"max {row['wait']['max_ms']} ms",
        ]
        for node in row.get("nodes", ()):
            lines.append(
                f"node         {node['address']}: {node['in_use']} in use, {node['idle']} "
                f"idle, max {node['max_connections']}, {node['created']} created, "
                f"{node['checkouts']} checkouts, {node['exhausted']} exhausted, "
                f"{node['errors']} errors"
            )
        for mux in row.get("async_multiplex", ()):
            lines.append(f"multiplexed  {_mux_line(mux)}")
        for text in lines:
            self.stdout.write(f"  {text}")
        if row["error"]:
            self.stdout.write(self.style.ERROR(f"  DOWN         {row['error']}"))
        else:
            self.stdout.write(f"  ping         {row['ping_ms']} ms")


_HEADER: tuple[str, ...] = (
    "host",
    "pid",
    "age",
    "in use",
    "idle",
    "max",
    "peak",
    "waits",
    "timeouts",
    "errors",
    "server",
    "seen",
)


def _process_cells(p: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(p["host"]),
        str(p["pid"]),
        _age(p["age_s"]),
        _num(p["in_use"]),
        _num(p["idle"]),
        _num(p["max_connections"]),
        _num(p["high_water"]),
        _num(p["waits"]),
        _num(p["exhausted"]),
        _num(p["errors"]),
        _num(p["server_connections"]),
        f"{p['seen_s']:.1f}s",
    )


def _total_cells(t: dict[str, Any]) -> tuple[str, ...]:
    return (
        "total",
        f"{t['processes']} proc",
        "",
        _num(t["in_use"]),
        _num(t["idle"]),
        _num(t["max_connections"]),
        "",
        _num(t["waits"]),
        _num(t["exhausted"]),
        _num(t["errors"]),
        _num(t["server_connections"]),
        "",
    )


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    """Host and pid left-aligned, the numbers right-aligned."""
    first = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
    rest = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
    return ("  " + "  ".join(first + rest)).rstrip()
