"""django-redis's extra cache methods people rely on, with its semantics, so that code
written for ``django_redis.cache.RedisCache`` runs unchanged (docs/cache.md lists them)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT

from redis_pool import get_redis
from redis_pool.cache import plans

if TYPE_CHECKING:
    from redis.lock import Lock

    from redis_pool.cache.plans import Plan

_GLOB_SPECIAL = re.compile(r"([*?[\]\\])")


def glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN/KEYS pattern."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _seconds(timeout: Any, scale: int) -> int:
    if isinstance(timeout, datetime.timedelta):
        return int(timeout.total_seconds() * scale)
    return int(timeout)


def _timestamp(when: Any, scale: int) -> int:
    if isinstance(when, datetime.datetime):
        return int(when.timestamp() * scale)
    return int(when)


class DjangoRedisExtras:
    """Mixed into ``RedisCache``; uses its key function and its driver."""

    _alias: str
    key_prefix: str
    version: int
    default_timeout: float | None

    if TYPE_CHECKING:

        def _run(self, plan: Plan) -> Any: ...
        def make_key(self, key: Any, version: int | None = None) -> str: ...
        def key_func(self, key: Any, key_prefix: str, version: Any) -> str: ...

    def clear_pattern(self) -> str:
        """What ``clear()`` deletes: every key this cache's key function makes (any version)."""
        return f"{glob_escape(self.key_prefix)}:*"

    def make_pattern(self, pattern: str, version: int | None = None) -> str:
        """django-redis's: ``pattern`` inside this cache's prefix and version, globbing kept."""
        version_text = str(self.version if version is None else version)
        return self.key_func(pattern, glob_escape(self.key_prefix), glob_escape(version_text))

    def reverse_key(self, key: str) -> str:
        return key.split(":", 2)[2]

    def ttl(self, key: Any, version: int | None = None) -> int | None:
        """Seconds left; None when the key never expires; 0 when it does not exist."""
        return self._run(plans.ttl(self.make_key(key, version), "TTL"))  # type: ignore[no-any-return]

    def pttl(self, key: Any, version: int | None = None) -> int | None:
        """``ttl()`` in milliseconds."""
        return self._run(plans.ttl(self.make_key(key, version), "PTTL"))  # type: ignore[no-any-return]

    def expire(self, key: Any, timeout: Any, version: int | None = None) -> bool:
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        made = self.make_key(key, version)
        return bool(self._run(plans.command("EXPIRE", made, _seconds(timeout, 1))))

    def pexpire(self, key: Any, timeout: Any, version: int | None = None) -> bool:
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        made = self.make_key(key, version)
        return bool(self._run(plans.command("PEXPIRE", made, _seconds(timeout, 1000))))

    def expire_at(self, key: Any, when: Any, version: int | None = None) -> bool:
        made = self.make_key(key, version)
        return bool(self._run(plans.command("EXPIREAT", made, _timestamp(when, 1))))

    def pexpire_at(self, key: Any, when: Any, version: int | None = None) -> bool:
        made = self.make_key(key, version)
        return bool(self._run(plans.command("PEXPIREAT", made, _timestamp(when, 1000))))

    def persist(self, key: Any, version: int | None = None) -> bool:
        return bool(self._run(plans.command("PERSIST", self.make_key(key, version))))

    def lock(
        self,
        key: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> Lock:
        """redis-py's ``Lock`` on this cache's key, through the alias's client."""
        client: Any = get_redis(self._alias)
        return client.lock(  # type: ignore[no-any-return]
            self.make_key(key, version),
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
        )

    def iter_keys(
        self, search: str, itersize: int | None = None, version: int | None = None
    ) -> Iterator[str]:
        """The cache keys (as passed to ``set``) matching the glob ``search``, by SCAN."""
        client = get_redis(self._alias)
        for item in client.scan_iter(match=self.make_pattern(search, version), count=itersize):
            yield self.reverse_key(item.decode() if isinstance(item, bytes) else item)

    def keys(self, search: str, version: int | None = None) -> list[str]:
        """``iter_keys`` as a list, by KEYS (blocks the server on a big database)."""
        found = get_redis(self._alias).keys(self.make_pattern(search, version))
        return [self.reverse_key(k.decode() if isinstance(k, bytes) else k) for k in found]

    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
    ) -> int:
        """Delete the keys matching the glob ``pattern``; returns how many."""
        client = get_redis(self._alias)
        if prefix is None:
            match = self.make_pattern(pattern, version)
        else:
            version_text = glob_escape(str(self.version if version is None else version))
            match = self.key_func(pattern, glob_escape(prefix), version_text)
        count = 0
        batch: list[Any] = []
        for key in client.scan_iter(match=match, count=itersize):
            batch.append(key)
            if len(batch) >= 1000:
                count += int(client.unlink(*batch))
                batch = []
        if batch:
            count += int(client.unlink(*batch))
        return count
