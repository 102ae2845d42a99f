"""Prometheus: a collector of every alias's pool statistics and a view that serves them.

    # urls.py
    from redis_pool.contrib.prometheus import metrics_view
    urlpatterns = [path("metrics/redis-pool", metrics_view)]

Fleet scope (the default): one scrape of any process returns the series of every live
process, read from the snapshots they publish (``redis_poolstats`` reads the same), plus
the server's view. prometheus_client's multiprocess mode cannot run custom collectors,
and a gunicorn worker only knows its own pools: the published snapshots are what every
worker can read. ``scope="process"``: this process's pools only, no network.

Names follow the OpenTelemetry database client conventions mapped to Prometheus where one
exists (``db_client_connection_*``), ``redis_pool_*`` otherwise. Labels hold the alias,
the host name and the pid, never a setting: no secret can reach them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

try:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        Metric,
        SummaryMetricFamily,
    )
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - the extra is installed in the test env
    raise ImportError(
        "redis_pool.contrib.prometheus needs prometheus_client: install the extra with "
        "pip install 'django-redis-pool[prometheus]'."
    ) from exc

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from redis_pool import pool_stats
from redis_pool.aio import async_pool_stats
from redis_pool.config.defaults import hostname
from redis_pool.observability.fleet import SUMMED, AliasView, read_fleet
from redis_pool.registry import aliases as configured_aliases

SCOPES = ("fleet", "process")
PROCESS_LABELS = ("alias", "host", "pid")
ALIAS_LABELS = ("alias",)
QUANTILE = "0.95"

# (name, help, field of a process row): gauges and counters of one process's pools.
GAUGES = (
    ("db_client_connection_max", "Most connections the pool may open (max_connections).",
     "max_connections"),
    ("db_client_connection_pending_requests",
     "Checkouts waiting for a connection now (blocking pools).", "waiting"),
    ("redis_pool_connection_high_water", "Most connections in use at once since the pool "
     "was built (or the process forked).", "high_water"),
)  # fmt: skip
COUNTERS = (
    ("db_client_connection_timeouts", "Checkouts that gave up waiting (pool_timeout).",
     "wait_timeouts"),
    ("redis_pool_checkouts", "Connections handed out by the pool.", "checkouts"),
    ("redis_pool_exhausted", "Checkouts refused with PoolExhaustedError.", "exhausted"),
    ("redis_pool_errors", "Connection errors: failed connects and broken connections.",
     "errors"),
    ("redis_pool_connections_opened", "Sockets the pool opened.", "created"),
    ("redis_pool_connections_closed", "Sockets the pool closed.", "closed"),
    ("redis_pool_leaks", "Connections held past leak_detection_threshold.", "leaks"),
)  # fmt: skip
# (name, help, Timing field of a process row); a Timing is in milliseconds.
SUMMARIES = (
    ("db_client_connection_wait_time_seconds", "Time checkouts waited for a connection "
     "(sync pools time only the checkouts that had to wait); quantile over recent ones.",
     "wait"),
    ("db_client_connection_use_time_seconds", "Time connections were held between checkout "
     "and return; quantile over recent ones.", "hold"),
    ("db_client_connection_create_time_seconds", "Time to open a connection (connect, "
     "handshake, AUTH); quantile over recent ones.", "connect"),
)  # fmt: skip
# Per alias, from the server and the fleet (fleet scope only).
ALIAS_GAUGES = (
    ("redis_pool_up", "1 if the alias's Redis answered this scrape, else 0.", "up"),
    ("redis_pool_processes", "Live processes that published a snapshot.", "processes"),
    ("redis_pool_unpublished_connections", "Server connections named by a pool of this "
     "alias that no live snapshot lists (a process that stopped publishing).",
     "unpublished_connections"),
    ("redis_pool_server_connected_clients", "Clients connected to the server (INFO).",
     "connected_clients"),
    ("redis_pool_server_maxclients", "The server's maxclients.", "maxclients"),
    ("redis_pool_budget_connections", "Worst case: every process's pool at its max, plus "
     "every other client now, against maxclients (aliases of one server added up).",
     "worst_case"),
    ("redis_pool_budget_used_ratio", "redis_pool_budget_connections / maxclients.",
     "used_ratio"),
)  # fmt: skip


class RedisPoolCollector(Collector):
    """Every alias's pool statistics as Prometheus metric families.

    ``scope="fleet"``: every live process of every host, from the published snapshots
    (one short-lived connection per alias per scrape). ``scope="process"``: this
    process's pools. ``aliases``: the aliases to show (default: every configured one).
    Register it with any ``CollectorRegistry``; ``metrics_view`` uses a registry of its own.
    """

    def __init__(self, scope: str = "fleet", aliases: Sequence[str] | None = None) -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES!r}, not {scope!r}")
        self.scope = scope
        self.aliases = list(aliases) if aliases is not None else None

    def describe(self) -> Iterable[Metric]:
        # The names without samples: registering the collector touches no network.
        return _Families(fleet=self.scope == "fleet").all()

    def collect(self) -> Iterable[Metric]:
        selected = self.aliases if self.aliases is not None else configured_aliases()
        families = _Families(fleet=self.scope == "fleet")
        if self.scope == "process":
            for alias in selected:
                families.add_process(alias, _this_process(alias))
        else:
            for view in read_fleet(selected):
                families.add_alias(view)
        return families.all()


def _this_process(alias: str) -> dict[str, Any]:
    """This process's row for ``alias``: its sync pool plus its async pools (one per event
    loop), added up as the fleet view adds up a snapshot."""
    row = pool_stats(alias).as_dict()
    for extra in async_pool_stats(alias):
        data = extra.as_dict()
        for name in SUMMED:
            row[name] = (row[name] or 0) + (data[name] or 0)
    return row


class _Families:
    """The metric families of one scrape, filled alias by alias."""

    def __init__(self, *, fleet: bool) -> None:
        self.count = GaugeMetricFamily(
            "db_client_connection_count",
            "Connections open now, by state: used (checked out) or idle (in the pool).",
            labels=(*PROCESS_LABELS, "state"),
        )
        self.gauges = [GaugeMetricFamily(n, h, labels=PROCESS_LABELS) for n, h, _ in GAUGES]
        self.counters = [CounterMetricFamily(n, h, labels=PROCESS_LABELS) for n, h, _ in COUNTERS]
        self.summaries = [SummaryMetricFamily(n, h, labels=PROCESS_LABELS) for n, h, _ in SUMMARIES]
        self.fleet = fleet
        self.per_alias: list[GaugeMetricFamily] = []
        self.server_connections = GaugeMetricFamily(
            "redis_pool_server_connections",
            "The server's connections named by this process's pool (CLIENT LIST).",
            labels=PROCESS_LABELS,
        )
        self.age = GaugeMetricFamily(
            "redis_pool_snapshot_age_seconds",
            "Seconds since this process published the snapshot shown.",
            labels=PROCESS_LABELS,
        )
        self.rejected = CounterMetricFamily(
            "redis_pool_server_rejected_connections",
            "Connections the server refused (maxclients reached), from INFO.",
            labels=ALIAS_LABELS,
        )
        if fleet:
            self.per_alias = [
                GaugeMetricFamily(n, h, labels=ALIAS_LABELS) for n, h, _ in ALIAS_GAUGES
            ]

    def all(self) -> list[Metric]:
        families: list[Metric] = [self.count, *self.gauges, *self.counters, *self.summaries]
        if self.fleet:
            families += [self.server_connections, self.age, *self.per_alias, self.rejected]
        return families

    def add_process(self, alias: str, row: dict[str, Any]) -> None:
        labels = [alias, str(row.get("host") or hostname()), str(row["pid"])]
        self.count.add_metric([*labels, "used"], _number(row["in_use"]))
        self.count.add_metric([*labels, "idle"], _number(row["idle"]))
        for family, (_, _, field) in zip(self.gauges, GAUGES, strict=True):
            family.add_metric(labels, _number(row[field]))
        for counter, (_, _, field) in zip(self.counters, COUNTERS, strict=True):
            counter.add_metric(labels, _number(row[field]))
        for summary, (name, _, field) in zip(self.summaries, SUMMARIES, strict=True):
            timing = row.get(field) or {}
            count = int(timing.get("count") or 0)
            summary.add_metric(labels, count, _number(timing.get("total_ms")) / 1000)
            quantile = dict(zip(PROCESS_LABELS, labels, strict=True), quantile=QUANTILE)
            summary.add_sample(name, quantile, _number(timing.get("p95_ms")) / 1000)
        if self.fleet:
            if row.get("server_connections") is not None:
                self.server_connections.add_metric(labels, row["server_connections"])
            if row.get("seen_s") is not None:
                self.age.add_metric(labels, row["seen_s"])

    def add_alias(self, view: AliasView) -> None:
        if view.error is None and view.server is None:
            return  # a topology the fleet view does not cover (its note says so)
        for row in view.processes:
            self.add_process(view.alias, row)
        values: dict[str, Any] = {"processes": None, "unpublished_connections": None}
        if view.error is None and view.note is None:
            values.update(view.totals)
        if view.server is not None:
            values.update(view.server.public())
            if view.server.rejected_connections is not None:
                self.rejected.add_metric([view.alias], view.server.rejected_connections)
        if view.budget is not None:
            values["worst_case"] = view.budget["worst_case"]
            used = view.budget["used_pct"]
            values["used_ratio"] = None if used is None else used / 100
        values["up"] = 0 if view.error else 1
        for family, (_, _, key) in zip(self.per_alias, ALIAS_GAUGES, strict=True):
            value = values.get(key)
            if value is not None:
                family.add_metric([view.alias], value)


def _number(value: Any) -> float:
    return float(value or 0)


def render(scope: str = "fleet", aliases: Sequence[str] | None = None) -> bytes:
    """The Prometheus text exposition of ``RedisPoolCollector(scope, aliases)``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisPoolCollector(scope, aliases))
    return generate_latest(registry)


@require_GET
def metrics_view(
    request: HttpRequest, scope: str = "fleet", aliases: Sequence[str] | None = None
) -> HttpResponse:
    """Serve the metrics. Options as URL keyword arguments:
    ``path("metrics/redis-pool", metrics_view, {"scope": "process"})``."""
    return HttpResponse(render(scope, aliases), content_type=CONTENT_TYPE_LATEST)


__all__ = ["RedisPoolCollector", "metrics_view", "render"]
