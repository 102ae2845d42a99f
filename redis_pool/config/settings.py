"""The one live settings object: every Django setting redis_pool reads, read at access time.

The only module that reads ``django.conf.settings`` for our settings, so that
``override_settings()`` just works.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

from redis_pool.config.alias import Parsed, parse
from redis_pool.config.keys import DEFAULT_ALIAS


class Settings:
    """Every setting redis_pool reads, read live so override_settings() just works."""

    @property
    def REDIS_POOL(self) -> Any:
        return getattr(django_settings, "REDIS_POOL", None)

    @property
    def DEBUG(self) -> bool:
        return bool(getattr(django_settings, "DEBUG", False))

    @property
    def REDIS_POOL_MIDDLEWARE_ALIAS(self) -> Any:
        return getattr(django_settings, "REDIS_POOL_MIDDLEWARE_ALIAS", DEFAULT_ALIAS)

    def parsed(self) -> Parsed:
        return parse(self.REDIS_POOL)


conf = Settings()
