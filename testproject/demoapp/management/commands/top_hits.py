from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from demoapp import counters


class Command(BaseCommand):
    help = "Show the demo hit counter and the busiest clients (reads Redis via get_redis())."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--limit", type=int, default=10, help="How many clients to list.")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")
        parser.add_argument("--reset", action="store_true", help="Zero the counters afterwards.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            total = counters.total_hits()
            top = counters.top_clients(options["limit"])
            if options["reset"]:
                counters.reset()
        except RedisError as exc:
            raise CommandError(f"Redis unavailable: {exc}") from exc

        if options["json"]:
            payload = {"total": total, "clients": [{"client": c, "hits": n} for c, n in top]}
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"total hits: {total}")
        if not top:
            self.stdout.write("no clients recorded yet")
        for client, count in top:
            self.stdout.write(f"{count:>10}  {client}")
        if options["reset"]:
            self.stdout.write(self.style.SUCCESS("counters reset"))
