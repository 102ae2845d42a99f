"""Hit counters that live in Redis, usable from views, management commands or shells.

Everything goes through ``get_redis()`` rather than ``request.redis`` so the same helpers
work outside a request (see ``manage.py top_hits``).  The total lives on the "default"
alias; per-client counts live on ``settings.DEMO_VISITORS_ALIAS`` ("sessions" in the
multi-alias settings) to exercise a second pool.
"""

from __future__ import annotations

from typing import cast

from django.conf import settings
from redis import Redis

from redis_pool import get_redis

HITS_KEY = "demo:hits"
CLIENTS_KEY = "demo:hits:clients"
INCR_GET_KEY = "demo:incr-get"


def _text(value: bytes | str) -> str:
    # Works whether or not the pool was configured with decode_responses=True.
    return value.decode() if isinstance(value, bytes) else value


def visitors_client() -> Redis:
    return get_redis(settings.DEMO_VISITORS_ALIAS)


def record_client(client_id: str) -> float:
    """Count one hit for ``client_id``; returns that client's new total."""
    score = visitors_client().zincrby(CLIENTS_KEY, 1, client_id)
    return float(score) if score is not None else 0.0


def total_hits() -> int:
    value = get_redis().get(HITS_KEY)
    return int(value) if value is not None else 0


def top_clients(limit: int = 10) -> list[tuple[str, int]]:
    """The ``limit`` clients with the most hits, busiest first."""
    rows = cast(
        "list[tuple[bytes | str, float]]",
        visitors_client().zrevrange(CLIENTS_KEY, 0, max(limit, 1) - 1, withscores=True),
    )
    return [(_text(member), int(score)) for member, score in rows]


def reset() -> None:
    get_redis().delete(HITS_KEY, INCR_GET_KEY)
    visitors_client().delete(CLIENTS_KEY)
