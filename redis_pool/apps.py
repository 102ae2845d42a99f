from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed


class RedisPoolConfig(AppConfig):
    name = "redis_pool"
    verbose_name = "Redis pool"

    def ready(self) -> None:
        from redis_pool import aio, registry
        from redis_pool.checks import check_settings

        checks.register(check_settings, "redis_pool")
        # Builds objects only; the first connection is made by the first command, so
        # migrate and every other command work while Redis is down.
        registry.load()
        setting_changed.connect(aio.on_setting_changed, dispatch_uid="redis_pool.reload")
