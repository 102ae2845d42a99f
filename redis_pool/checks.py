"""System checks: pure functions of settings. They never open a socket."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from redis_pool.conf import conf


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every problem ``conf.parse`` finds in REDIS_POOL (E001-E009, W001-W003)."""
    parsed = conf.parsed()
    messages: list[CheckMessage] = []
    for problem in parsed.problems:
        kind = Error if problem.error else Warning
        messages.append(kind(problem.msg, hint=problem.hint, id=problem.id))
    alias = conf.REDIS_POOL_MIDDLEWARE_ALIAS
    if not parsed.problems and alias not in parsed.configs:
        configured = ", ".join(repr(a) for a in parsed.configs) or "none"
        messages.append(
            Error(
                f"REDIS_POOL_MIDDLEWARE_ALIAS names the alias {alias!r}, which REDIS_POOL "
                f"does not define; configured: {configured}.",
                id="redis_pool.E010",
            )
        )
    return messages
