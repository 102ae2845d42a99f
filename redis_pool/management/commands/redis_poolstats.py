"""``manage.py redis_poolstats``: pool usage per alias (this process's view)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import RedisError

from redis_pool.registry import AliasNotFound, aliases, get_pool, get_redis


def _ping_ms(alias: str) -> float:
    client = get_redis(alias)
    start = time.perf_counter()
    client.ping()
    return round((time.perf_counter() - start) * 1000, 3)


class Command(BaseCommand):
    help = "Show each Redis pool alias: class, address, limits, connections and PING time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument(
            "--alias", action="append", metavar="NAME", help="Only this alias (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        selected = options["alias"] or aliases()
        rows: list[dict[str, Any]] = []
        down: list[str] = []
        for alias in selected:
            try:
                get_pool(alias)
            except (AliasNotFound, LookupError) as exc:
                raise CommandError(str(exc)) from None
            try:
                ping: float | None = _ping_ms(alias)
                error = None
            except RedisError as exc:
                ping, error = None, f"{type(exc).__name__}: {exc}"
                down.append(alias)
            stats = get_pool(alias).stats().as_dict()
            stats["ping_ms"] = ping
            stats["error"] = error
            rows.append(stats)
        if options["json"]:
            self.stdout.write(json.dumps({"aliases": rows}, indent=2, sort_keys=True))
        else:
            for row in rows:
                self._table(row)
        if down:
            raise CommandError(f"Redis unreachable for alias(es): {', '.join(down)}.")

    def _table(self, row: dict[str, Any]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"[{row['alias']}] {row['address']}"))
        self.stdout.write(f"  pool            {row['pool_class']}")
        self.stdout.write(f"  max_connections {row['max_connections']}")
        self.stdout.write(f"  created         {row['created']}")
        self.stdout.write(f"  in use          {row['in_use']}")
        self.stdout.write(f"  idle            {row['idle']}")
        if row["error"]:
            self.stdout.write(self.style.ERROR(f"  DOWN            {row['error']}"))
        else:
            self.stdout.write(f"  ping            {row['ping_ms']} ms")
