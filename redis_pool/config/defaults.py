"""What we set where the user sets nothing: timeouts, retries, client names, driver info.

The docs' settings reference gives the reason for each default; keep the two in step.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from functools import cache
from typing import Any

from django.conf import settings as django_settings
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_SOCKET_CONNECT_TIMEOUT = 2.0
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_POOL_TIMEOUT = 2.0
DEFAULT_HEALTH_CHECK_INTERVAL = 30
DEFAULT_RETRIES = 2
DEFAULT_PUBLISH_INTERVAL = 2.0


def hostname() -> str:
    """This machine's short host name: in client names, stats keys and the fleet view.

    The one place it is computed, so a pool's ``client_name`` and its ``host`` agree.
    Whitespace becomes '_' (CLIENT SETNAME refuses spaces and newlines).
    """
    return re.sub(r"\s", "_", socket.gethostname().split(".")[0]) or "localhost"


def project_name() -> str:
    """The first part of the settings module: the project, as CLIENT LIST groups it."""
    module = getattr(django_settings, "SETTINGS_MODULE", None) or os.environ.get(
        "DJANGO_SETTINGS_MODULE", "django"
    )
    return module.split(".")[0]


def default_client_name(alias: str) -> str:
    """``redis_pool:<project>:<alias>:<host>:<pid>``: what CLIENT LIST groups by."""
    name = f"redis_pool:{project_name()}:{alias}:{hostname()}:{os.getpid()}"
    # CLIENT SETNAME refuses spaces and newlines.
    return re.sub(r"\s", "_", name)


@cache
def shared_driver_info() -> Any:
    """One redis-py ``DriverInfo`` per process, naming us as an upstream driver.

    redis-py 8 builds one per connection otherwise, reading its package metadata each time
    (~0.7 ms per new connection). ``CLIENT INFO`` then shows
    ``lib-name=redis-py(django-redis-pool_v<version>)``. None on redis-py 7, which has none.
    """
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py 7
        return None
    try:
        from importlib.metadata import version

        ours = version("django-redis-pool")
    except Exception:  # running from a checkout that was never installed
        ours = "0"
    return DriverInfo().add_upstream_driver("django-redis-pool", ours)


def default_retry() -> Retry:
    # Retry only connection errors: a timeout already cost socket_timeout seconds, and
    # retrying it would multiply the time a slow Redis holds a worker.
    return Retry(
        ExponentialWithJitterBackoff(base=0.01, cap=0.1),
        DEFAULT_RETRIES,
        supported_errors=(RedisConnectionError,),
    )


def with_defaults(alias: str, kwargs: Mapping[str, Any], transport: str) -> dict[str, Any]:
    """``kwargs`` (connection keyword arguments) with our defaults where none is set."""
    result = {
        "socket_connect_timeout": DEFAULT_SOCKET_CONNECT_TIMEOUT,
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
        "health_check_interval": DEFAULT_HEALTH_CHECK_INTERVAL,
        **kwargs,
    }
    if "retry" not in result:
        result["retry"] = default_retry()
    if transport != "unix":
        result.setdefault("socket_keepalive", True)
    if "client_name" not in result:
        result["client_name"] = default_client_name(alias)
    if not {"driver_info", "lib_name", "lib_version"} & result.keys():
        driver_info = shared_driver_info()
        if driver_info is not None:
            result["driver_info"] = driver_info
    return result
