"""The exceptions redis_pool raises, at the bottom of the layers: any module may import them.

Re-exported from ``redis_pool``; import them from there.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError


class PoolExhaustedError(MaxConnectionsError):
    """Every connection of an alias's pool is checked out (after waiting, if blocking)."""

    def __init__(self, alias: str, limit: int, waited: float | None) -> None:
        if waited is None:
            how = "it is a plain pool ('pool_timeout': None), so it does not wait"
        else:
            how = f"no connection came free within pool_timeout={waited:g}s"
        super().__init__(
            f"Redis pool {alias!r} is exhausted: all {limit} connections (max_connections) "
            f"are in use and {how}."
        )
        self.alias = alias
        self.limit = limit


class AliasNotFound(KeyError):
    """``get_redis(alias)`` for an alias REDIS_POOL does not define."""

    def __init__(self, alias: str, configured: list[str]) -> None:
        listed = ", ".join(repr(a) for a in configured) or "none"
        super().__init__(f"No Redis pool alias {alias!r} in REDIS_POOL; configured: {listed}.")
        self.alias = alias

    def __str__(self) -> str:
        return str(self.args[0])


class ClusterUnavailableError(RedisConnectionError):
    """The cluster client of an alias could not be built: no startup node answered."""

    def __init__(self, alias: str, address: str, detail: str) -> None:
        super().__init__(
            f"Redis Cluster alias {alias!r} ({address}) is unavailable: {detail} "
            "get_redis() will try again on its next call."
        )
        self.alias = alias
