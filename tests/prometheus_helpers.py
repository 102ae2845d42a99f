"""Reading a Prometheus scrape back, for the contrib.prometheus tests (needs prometheus_client)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from redis_pool.config.defaults import hostname

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str | bytes) -> Samples:
    """Every sample of a scrape, by (name, sorted labels), through prometheus_client's parser."""
    if isinstance(text, bytes):
        text = text.decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, key
            found[key] = sample.value
    return found


def process_values(found: Samples, alias: str, pid: int) -> dict[str, float]:
    """The samples of one process of one alias, by name (+ state or quantile)."""
    values = {}
    for (name, labels), value in found.items():
        data = dict(labels)
        if data.get("alias") != alias or data.get("pid") != str(pid):
            continue
        assert data["host"] == hostname()
        suffix = data.get("state") or data.get("quantile")
        values[f"{name}:{suffix}" if suffix else name] = value
    return values


def expected(row: dict[str, Any]) -> dict[str, float]:
    """What the scrape must say for one process row (PoolStats.as_dict() or a fleet row)."""
    values = {
        "db_client_connection_count:used": row["in_use"],
        "db_client_connection_count:idle": row["idle"],
        "db_client_connection_max": row["max_connections"],
        "db_client_connection_pending_requests": row["waiting"],
        "redis_pool_connection_high_water": row["high_water"],
        "db_client_connection_timeouts_total": row["wait_timeouts"],
        "redis_pool_checkouts_total": row["checkouts"],
        "redis_pool_exhausted_total": row["exhausted"],
        "redis_pool_errors_total": row["errors"],
        "redis_pool_connections_opened_total": row["created"],
        "redis_pool_connections_closed_total": row["closed"],
        "redis_pool_leaks_total": row["leaks"],
    }
    for name, field in (("wait_time", "wait"), ("use_time", "hold"), ("create_time", "connect")):
        base = f"db_client_connection_{name}_seconds"
        values[f"{base}_count"] = row[field]["count"]
        values[f"{base}_sum"] = row[field]["total_ms"] / 1000
        values[f"{base}:0.95"] = row[field]["p95_ms"] / 1000
    return {name: float(value) for name, value in values.items()}
