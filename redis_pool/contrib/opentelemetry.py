"""OpenTelemetry: every alias's pools as OpenTelemetry database-client connection metrics.

    # once at start-up, after your MeterProvider is set (apps.py ready(), or wsgi.py)
    from redis_pool.contrib.opentelemetry import instrument
    instrument()

redis-py (7.4+, 8) records connection metrics through OpenTelemetry (``redis.observability``:
``db.client.connection.create_time``, ``.wait_time``, ``redis.client.connection.closed``,
errors...), but names each pool ``host:port_<random>``. ``instrument()`` bridges rather
than duplicates: it turns redis-py's metrics on (unless the application already did) and
hands redis-py a meter that names our pools by their alias. Our counters add what redis-py
lacks: ``db.client.connection.max``, ``.pending_requests``, ``.use_time``, ``.timeouts``
(redis-py 8.1 defines the instrument but never records it), and ``.count``, in place of
redis-py's for our pools: redis-py's asyncio ``BlockingConnectionPool`` counts every return
but no checkout, so its used/idle count drifts (used goes negative).
"""

from __future__ import annotations

import gc
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
except ImportError as exc:  # pragma: no cover - the extra is installed in the test env
    raise ImportError(
        "redis_pool.contrib.opentelemetry needs the OpenTelemetry API: install the extra "
        "with pip install 'django-redis-pool[otel]'."
    ) from exc

from redis_pool import node_pools, pool_stats
from redis_pool.aio import async_entries, async_pool_stats
from redis_pool.registry import aliases as configured_aliases
from redis_pool.stats.counters import log_holds, new_hold_log

METER_NAME = "redis_pool"
POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
SYSTEM = {"db.system.name": "redis"}
# Hold times kept per pool between two collections (about 40 bytes each): a pool that
# returns more connections than this between two exports records the latest ones.
HOLD_LOG_SIZE = 1 << 17


def _async_pools(alias: str) -> list[Any]:
    """This process's async pools of ``alias`` (one per event loop; Sentinel: master and
    replicas; Cluster: one per node)."""
    found: list[Any] = []
    for entry in async_entries(alias):
        single = getattr(entry, "pool", None)
        several = getattr(entry, "pools", None)  # Sentinel
        if single is not None:
            found.append(single)
        elif isinstance(several, list):
            found += several
        else:  # Cluster: its nodes are its pools
            found += list(getattr(entry, "nodes", {}).values())
    return found


def our_pools() -> Iterator[tuple[str, Any]]:
    """(alias, pool) for every pool of this process, sync and async."""
    for alias in configured_aliases():
        for pool in node_pools(alias):
            yield alias, pool
        for pool in _async_pools(alias):
            yield alias, pool


def _totals(alias: str) -> dict[str, int]:
    """This process's pools of ``alias`` added up, as the fleet view adds up a snapshot."""
    rows = [pool_stats(alias), *async_pool_stats(alias)]
    names = ("max_connections", "waiting", "in_use", "idle", "wait_timeouts")
    return {name: sum(getattr(row, name) for row in rows) for name in names}


class PoolMetrics:
    """The instruments registered by ``instrument()``; ``stop()`` detaches them."""

    def __init__(self, meter: Meter) -> None:
        self.active = True
        self.lock = threading.Lock()
        self.use_time: Histogram = meter.create_histogram(
            "db.client.connection.use_time",
            unit="s",
            description="The time between borrowing a connection and returning it to the pool.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            callbacks=[self._max],
            unit="{connection}",
            description="The maximum number of open connections allowed.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests",
            callbacks=[self._gauge("waiting")],
            unit="{request}",
            description="The number of current pending requests for an open connection.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[self._count],
            unit="{connection}",
            description="The number of connections that are currently in state described "
            "by the state attribute.",
        )
        meter.create_observable_counter(
            "db.client.connection.timeouts",
            callbacks=[self._gauge("wait_timeouts")],
            unit="{timeout}",
            description="The number of connection timeouts that have occurred trying to "
            "obtain a connection from the pool.",
        )

    def stop(self) -> None:
        self.active = False

    def _max(self, options: CallbackOptions) -> Iterable[Observation]:
        # The SDK runs every observable callback before it reads the synchronous
        # instruments, so hold times recorded here are in this same collection.
        self.record_holds()
        return self._gauge("max_connections")(options)

    def _gauge(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if not self.active:
                return []
            return [
                Observation(_totals(alias)[field], attributes={POOL_NAME: alias, **SYSTEM})
                for alias in configured_aliases()
            ]

        return observe

    def _count(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self.active:
            return []
        found = []
        for alias in configured_aliases():
            totals = _totals(alias)
            for state, field in (("used", "in_use"), ("idle", "idle")):
                attributes = {POOL_NAME: alias, STATE: state, **SYSTEM}
                found.append(Observation(totals[field], attributes=attributes))
        return found

    def record_holds(self) -> None:
        """Record the hold times every pool logged since the last collection."""
        if not self.active:
            return
        with self.lock:  # two readers collecting at once must not share out one log
            for alias, pool in our_pools():
                log = _hold_log(pool)
                if log is None:
                    continue
                attributes = {POOL_NAME: alias, **SYSTEM}
                record = self.use_time.record
                while True:
                    try:
                        seconds = log.popleft()
                    except IndexError:
                        break
                    record(seconds, attributes)


def _hold_log(pool: Any) -> Any:
    counters = getattr(pool, "counters", None)
    if counters is None:
        return None
    if counters.hold_log is None:  # a pool built before instrument(): from now on
        counters.hold_log = new_hold_log()
    return counters.hold_log


_active: PoolMetrics | None = None
# A provider keeps the instruments of a meter name for good (a second registration of a
# name returns the first instrument, with the first callbacks): one PoolMetrics per provider.
_per_provider: weakref.WeakKeyDictionary[Any, PoolMetrics] = weakref.WeakKeyDictionary()
_redis_py_started = False  # we turned redis-py's metrics on: uninstrument() turns them off


def instrument(
    meter_provider: MeterProvider | None = None, *, redis_py: bool = True
) -> PoolMetrics:
    """Report every alias's pools through OpenTelemetry; call it once at start-up.

    ``meter_provider``: default, the global one (``opentelemetry.metrics``). ``redis_py``:
    bridge redis-py's own connection metrics (redis-py 7.4 and later), turning them on if the
    application has not, so that they name our pools by alias. Calling it again with
    another provider moves the reporting there (tests); with the same one, changes nothing.
    """
    global _active
    provider = meter_provider or metrics.get_meter_provider()
    if redis_py:
        bridge_redis_py(provider)
    log_holds(HOLD_LOG_SIZE)
    if _active is not None:
        _active.stop()
    _active = _per_provider.get(provider)
    if _active is None:
        _active = _per_provider[provider] = PoolMetrics(provider.get_meter(METER_NAME, _version()))
    _active.active = True
    for _, pool in our_pools():
        _hold_log(pool)
    return _active


def uninstrument() -> None:
    """Stop reporting: our instruments observe nothing more, pools stop logging hold
    times, and redis-py's metrics go back to the way ``instrument()`` found them."""
    global _active, _redis_py_started
    if _active is not None:
        _active.stop()
        _active = None
    log_holds(0)
    for _, pool in our_pools():
        counters = getattr(pool, "counters", None)
        if counters is not None:
            counters.hold_log = None
    try:
        from redis.observability import get_observability_instance, reset_observability_instance
    except ImportError:
        return
    manager = get_observability_instance().get_provider_manager()
    ours: Any = manager._meter_provider if manager is not None else None
    if manager is not None and isinstance(ours, AliasNaming):
        manager._meter_provider = ours.provider  # type: ignore[assignment]
    if _redis_py_started:
        reset_observability_instance()
        _redis_py_started = False
    _reset_collectors()


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("django-redis-pool")
    except PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
        return None


# -- redis-py's metrics, named by alias --------------------------------------------------
def bridge_redis_py(provider: MeterProvider) -> bool:
    """Have redis-py's connection metrics name our pools by alias. False if this redis-py
    has no ``redis.observability`` (before 7.4)."""
    try:
        from redis.observability import MetricGroup, OTelConfig, get_observability_instance
    except ImportError:
        return False
    global _redis_py_started
    observability = get_observability_instance()
    if observability.get_provider_manager() is None:
        groups = [
            MetricGroup.CONNECTION_BASIC,
            MetricGroup.CONNECTION_ADVANCED,
            MetricGroup.RESILIENCY,
        ]
        observability.init(OTelConfig(metric_groups=groups))
        _redis_py_started = True
    manager = observability.get_provider_manager()
    assert manager is not None
    real = provider.provider if isinstance(provider, AliasNaming) else provider
    # redis-py reads its meter provider from this attribute (set from the global provider
    # on first use); it has no public way to take one of ours.
    manager._meter_provider = AliasNaming(real)  # type: ignore[assignment]
    _reset_collectors()  # redis-py builds its instruments again, on our meter
    return True


def _reset_collectors() -> None:
    """Have redis-py's sync and asyncio recorders build their instruments afresh, now.

    Now, and with the garbage collector paused: redis-py builds them lazily on the first
    record, and a pool's ``__del__`` records too. Left lazy, a collection running inside
    the SDK's instrument creation (which holds the meter's lock, not re-entrant) can run a
    pool's ``__del__`` that builds them again, and the thread deadlocks on that lock.
    """
    from redis.observability import recorder

    collecting = gc.isenabled()
    gc.disable()
    try:
        recorder.reset_collector()
        recorder.is_enabled()  # builds the collector
        try:
            from redis.asyncio.observability import recorder as async_recorder
        except ImportError:  # pragma: no cover - every redis-py with observability has both
            return
        async_recorder.reset_collector()
        async_recorder._get_or_create_collector()  # its public is_enabled() is a coroutine
    finally:
        if collecting:
            gc.enable()


# redis-py names a pool host:port_<_pool_id>; ours set the id (pools.observability_id).
OUR_POOL = re.compile(r"_redis_pool:(?P<alias>.+):[0-9a-f]{8}\Z", re.DOTALL)


def alias_of(pool_name: str) -> str | None:
    """The alias of one of our pools from redis-py's name for it; None for another pool.
    From the name alone, no lookup: redis-py records from a pool's ``__del__`` too."""
    found = OUR_POOL.search(pool_name)
    return found["alias"] if found else None


# redis-py's instruments that our counters replace for our pools (see the module's doc).
REPLACED = frozenset({"db.client.connection.count", "db.client.connection.timeouts"})


class _Instrument:
    """One of redis-py's synchronous instruments, with our pools' names replaced."""

    def __init__(self, instrument: Any, name: str) -> None:
        self._instrument = instrument
        self._replaced = name in REPLACED

    def _renamed(self, attributes: Any) -> Any:
        """``attributes`` with our alias as the pool name; None: not to be recorded."""
        if isinstance(attributes, Mapping):
            name = attributes.get(POOL_NAME)
            alias = alias_of(name) if isinstance(name, str) else None
            if alias is not None:
                return None if self._replaced else {**attributes, POOL_NAME: alias}
        return attributes

    def add(self, amount: float, attributes: Any = None, *args: Any, **kwargs: Any) -> None:
        renamed = self._renamed(attributes)
        if renamed is not None or attributes is None:
            self._instrument.add(amount, renamed, *args, **kwargs)

    def record(self, amount: float, attributes: Any = None, *args: Any, **kwargs: Any) -> None:
        renamed = self._renamed(attributes)
        if renamed is not None or attributes is None:
            self._instrument.record(amount, renamed, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._instrument, name)


class _Meter:
    def __init__(self, meter: Any) -> None:
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._meter, name)
        if name in ("create_counter", "create_up_down_counter", "create_histogram"):

            def create(name: str, *args: Any, **kwargs: Any) -> _Instrument:
                return _Instrument(attribute(name, *args, **kwargs), name)

            return create
        return attribute


class AliasNaming:
    """A meter provider for redis-py: instruments as the wrapped provider's, with
    ``db.client.connection.pool.name`` our alias for our pools (others' unchanged)."""

    def __init__(self, provider: MeterProvider) -> None:
        self.provider = provider

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return _Meter(self.provider.get_meter(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:  # force_flush, shutdown
        return getattr(self.provider, name)


__all__ = ["AliasNaming", "PoolMetrics", "bridge_redis_py", "instrument", "uninstrument"]
