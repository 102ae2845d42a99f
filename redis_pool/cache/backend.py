"""``RedisCache``: Django's cache API on a ``REDIS_POOL`` alias's one pool, sync and async.

Django makes a backend instance per thread (and per async context); this one holds no
connection and no pool of its own. Every operation asks ``get_redis(alias)`` (a dict lookup)
or ``aget_redis(alias)`` (the running loop's pool) for the alias's shared client, so the
cache is bounded by the alias's ``max_connections``, counted in ``pool_stats()`` and follows
``override_settings(REDIS_POOL=...)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.core.cache.backends.base import (
    DEFAULT_TIMEOUT,
    MEMCACHE_MAX_KEY_LENGTH,
    BaseCache,
)
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_pool import aget_redis, get_pool, get_redis
from redis_pool.cache import plans
from redis_pool.cache.extras import DjangoRedisExtras
from redis_pool.cache.options import parse
from redis_pool.cache.plans import INCR_SCRIPT, INCR_SHA, RAW, Plan
from redis_pool.cache.serializer import RedisSerializer

logger = logging.getLogger("redis_pool.cache")

# What IGNORE_EXCEPTIONS turns into a miss: Redis unreachable, slow, exhausted pool
# (PoolExhaustedError is a ConnectionError), loading, or a replica after a failover. Not
# other ResponseErrors (INCR of a pickled value...): those are bugs to see, not outages.
IGNORABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)

# What Django's memcache_key_warnings() looks for. Django's own pattern is a lazy object
# whose every use costs ~2 µs (of ~50 per operation); this one is compiled once. Only a key
# it matches goes through Django's validate_key(), which emits the warnings themselves.
_BAD_KEY_CHARS = re.compile(r"[\x00-\x20\x7f]")


class _Client:
    """``cache.client.get_client()``: what ``django_redis.get_redis_connection()`` calls."""

    def __init__(self, alias: str, serializer: RedisSerializer) -> None:
        self.alias = alias
        self._serializer = serializer  # django-redis's client attribute, read by its users

    def get_client(self, write: bool = True, **kwargs: Any) -> Any:
        return get_redis(self.alias)


class RedisCache(DjangoRedisExtras, BaseCache):
    """Django cache backend whose ``LOCATION`` is a ``REDIS_POOL`` alias."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        self._options = parse(server, params.get("OPTIONS"))
        super().__init__(params)
        self._alias = self._options.alias
        try:
            get_pool(self._alias)  # settings only, no network
        except TypeError:
            raise ImproperlyConfigured(
                f"CACHES LOCATION {server!r} is a Redis Cluster alias: the cache backend needs "
                "one server (or a Sentinel master) for MGET, DEL of many keys and SCAN."
            ) from None
        except KeyError as exc:  # AliasNotFound
            raise ImproperlyConfigured(f"CACHES LOCATION {server!r}: {exc}") from None
        self._serializer = RedisSerializer()
        self.client = _Client(self._alias, self._serializer)

    @property
    def alias(self) -> str:
        """The ``REDIS_POOL`` alias this cache uses."""
        return self._alias

    def __repr__(self) -> str:
        return f"<RedisCache alias={self._alias!r} key_prefix={self.key_prefix!r}>"

    def get_backend_timeout(self, timeout: float | object | None = DEFAULT_TIMEOUT) -> int | None:
        """Django's RedisCache rules: None persists, <= 0 deletes, fractions truncate."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0, int(timeout))  # type: ignore[call-overload]

    def validate_key(self, key: str) -> None:
        """Django's key warnings (CacheKeyWarning), checked cheaply for the common clean key."""
        if len(key) > MEMCACHE_MAX_KEY_LENGTH or _BAD_KEY_CHARS.search(key) is not None:
            super().validate_key(key)

    # -- drivers ------------------------------------------------------------------------

    def _ignored(self, exc: Exception, miss: Any) -> Any:
        if not self._options.ignore_exceptions:
            raise exc
        if self._options.log_ignored_exceptions:
            logger.warning(
                "cache on REDIS_POOL alias %r: %s ignored (IGNORE_EXCEPTIONS): %s",
                self._alias,
                type(exc).__name__,
                exc,
            )
        return miss

    def _run(self, plan: Plan) -> Any:
        try:
            client: Any = get_redis(self._alias)
            if len(plan.calls) == 1:
                args, options = plan.calls[0]
                try:
                    results = [client.execute_command(*args, **options)]
                except NoScriptError:
                    assert plan.fallback is not None
                    results = [client.execute_command(*plan.fallback, **options)]
            else:
                pipe = client.pipeline(transaction=False)
                for args, options in plan.calls:
                    pipe.execute_command(*args, **options)
                results = pipe.execute()
        except IGNORABLE as exc:
            return self._ignored(exc, plan.miss)
        return plan.finish(results)

    async def _arun(self, plan: Plan) -> Any:
        try:
            client: Any = aget_redis(self._alias)
            if len(plan.calls) == 1:
                args, options = plan.calls[0]
                try:
                    results = [await client.execute_command(*args, **options)]
                except NoScriptError:
                    assert plan.fallback is not None
                    results = [await client.execute_command(*plan.fallback, **options)]
            else:
                pipe = client.pipeline(transaction=False)
                for args, options in plan.calls:
                    pipe.execute_command(*args, **options)
                results = await pipe.execute()
        except IGNORABLE as exc:
            return self._ignored(exc, plan.miss)
        return plan.finish(results)

    # -- plans from Django's arguments ----------------------------------------------------

    def _key(self, key: Any, version: int | None) -> str:
        made = self.make_key(key, version)
        self.validate_key(made)
        return made

    def _keys(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        make, validate = self.make_key, self.validate_key
        key_map = {}
        for key in keys:
            made = make(key, version)
            validate(made)
            key_map[made] = key
        return key_map

    def _add(self, key: Any, value: Any, timeout: Any, version: int | None) -> Plan:
        timeout = self.get_backend_timeout(timeout)
        return plans.add(self._serializer, self._key(key, version), value, timeout)

    def _set(self, key: Any, value: Any, timeout: Any, version: int | None, nx: bool) -> Plan:
        made = self._key(key, version)
        return plans.set_(self._serializer, made, value, self.get_backend_timeout(timeout), nx)

    def _set_many(self, data: dict[Any, Any], timeout: Any, version: int | None) -> Plan:
        made = {self._key(key, version): value for key, value in data.items()}
        return plans.set_many(self._serializer, made, self.get_backend_timeout(timeout))

    def _get_many(self, keys: Iterable[Any], version: int | None) -> tuple[Plan, dict[str, Any]]:
        key_map = self._keys(keys, version)
        return plans.get_many(self._serializer, list(key_map)), key_map

    # -- Django's cache API, sync ---------------------------------------------------------

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._run(self._add(key, value, timeout, version))

    # get, set, delete, incr and get_many are the hot path: one command each, sent straight
    # from here rather than through a Plan (the same commands and replies as plans.py's,
    # which the async methods and the other operations use; tests run both).

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        made = self._key(key, version)
        try:
            client: Any = get_redis(self._alias)
            value = client.execute_command("GET", made, **RAW)
        except IGNORABLE as exc:
            return self._ignored(exc, default)
        return default if value is None else self._serializer.loads(value)

    def set(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Any = None,
        nx: bool = False,
    ) -> Any:
        """``nx=True`` (django-redis's option) sets only an absent key and returns whether it
        did; plain ``set()`` returns None, as Django's does."""
        if nx:
            return self._run(self._set(key, value, timeout, version, nx))
        made = self._key(key, version)
        seconds = self.get_backend_timeout(timeout)
        if seconds == 0:
            return self._run(plans.set_(self._serializer, made, value, 0))
        dumped = self._serializer.dumps(value)
        try:
            client: Any = get_redis(self._alias)
            if seconds is None:
                client.execute_command("SET", made, dumped)
            else:
                client.execute_command("SET", made, dumped, "EX", seconds)
        except IGNORABLE as exc:
            self._ignored(exc, None)
        return None

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        plan = plans.touch(self._key(key, version), self.get_backend_timeout(timeout))
        return self._run(plan)

    def delete(self, key: Any, version: Any = None) -> Any:
        made = self._key(key, version)
        try:
            client: Any = get_redis(self._alias)
            return bool(client.execute_command("DEL", made))
        except IGNORABLE as exc:
            return self._ignored(exc, False)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        key_map = self._keys(keys, version)
        if not key_map:
            return {}
        made = list(key_map)
        try:
            client: Any = get_redis(self._alias)
            values = client.execute_command("MGET", *made, **RAW)
        except IGNORABLE as exc:
            return self._ignored(exc, {})
        loads = self._serializer.loads
        return {key_map[k]: loads(v) for k, v in zip(made, values, strict=True) if v is not None}

    def has_key(self, key: Any, version: Any = None) -> Any:
        return self._run(plans.has_key(self._key(key, version)))

    def incr(
        self, key: Any, delta: int = 1, version: Any = None, ignore_key_check: bool = False
    ) -> Any:
        made = self._key(key, version)
        if ignore_key_check:
            return self._run(plans.incr(made, delta, ignore_key_check))
        client: Any = get_redis(self._alias)
        try:
            try:
                value = client.execute_command("EVALSHA", INCR_SHA, 1, made, delta)
            except NoScriptError:  # the server lost the script (restart, SCRIPT FLUSH)
                value = client.execute_command("EVAL", INCR_SCRIPT, 1, made, delta)
        except IGNORABLE as exc:
            return self._ignored(exc, None)
        if value is None:
            raise ValueError(f"Key '{made}' not found.")
        return int(value)

    def decr(
        self, key: Any, delta: int = 1, version: Any = None, ignore_key_check: bool = False
    ) -> Any:
        return self.incr(key, -delta, version, ignore_key_check)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        if data:
            self._run(self._set_many(data, timeout, version))
        return []

    def delete_many(self, keys: Any, version: Any = None) -> Any:
        """How many keys were deleted (django-redis's); None for no keys (Django's)."""
        made = list(self._keys(keys, version))
        return self._run(plans.delete_many(made)) if made else None

    def clear(self) -> None:
        """Delete this cache's keys (``KEY_PREFIX:*``), or the whole DB with CLEAR flushdb."""
        try:
            client = get_redis(self._alias)
            if self._options.clear == "flushdb":
                client.flushdb()
                return
            batch: list[Any] = []
            for key in client.scan_iter(match=self.clear_pattern(), count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
        except IGNORABLE as exc:
            self._ignored(exc, None)

    def close(self, **kwargs: Any) -> None:
        """Nothing to do: the connections belong to the alias's pool, which stays open.

        Django calls this at the end of every request."""

    # -- Django's cache API, async (native: the running loop's pool) ----------------------

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> Any:
        return await self._arun(self._add(key, value, timeout, version))

    async def aget(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return await self._arun(plans.get(self._serializer, self._key(key, version), default))

    async def aset(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Any = None,
        nx: bool = False,
    ) -> Any:
        return await self._arun(self._set(key, value, timeout, version, nx))

    async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        plan = plans.touch(self._key(key, version), self.get_backend_timeout(timeout))
        return await self._arun(plan)

    async def adelete(self, key: Any, version: Any = None) -> Any:
        return await self._arun(plans.delete(self._key(key, version)))

    async def aget_many(self, keys: Any, version: Any = None) -> Any:
        plan, key_map = self._get_many(keys, version)
        if not key_map:
            return {}
        return {key_map[k]: v for k, v in (await self._arun(plan)).items()}

    async def ahas_key(self, key: Any, version: Any = None) -> Any:
        return await self._arun(plans.has_key(self._key(key, version)))

    async def aincr(self, key: Any, delta: int = 1, version: Any = None) -> Any:
        return await self._arun(plans.incr(self._key(key, version), delta))

    async def adecr(self, key: Any, delta: int = 1, version: Any = None) -> Any:
        return await self.aincr(key, -delta, version)

    async def aset_many(
        self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> Any:
        if data:
            await self._arun(self._set_many(data, timeout, version))
        return []

    async def adelete_many(self, keys: Any, version: Any = None) -> Any:
        made = list(self._keys(keys, version))
        return await self._arun(plans.delete_many(made)) if made else None

    async def aclear(self) -> None:
        try:
            client = aget_redis(self._alias)
            if self._options.clear == "flushdb":
                await client.flushdb()
                return
            batch: list[Any] = []
            async for key in client.scan_iter(match=self.clear_pattern(), count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
        except IGNORABLE as exc:
            self._ignored(exc, None)

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to do, as ``close()``."""
