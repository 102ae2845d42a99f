"""System checks: pure functions of settings. They never open a socket."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from redis_pool.config.alias import split_aliases
from redis_pool.config.secrets import has_credentials, show
from redis_pool.config.settings import conf


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every problem ``conf.parse`` finds in REDIS_POOL (E001-E011, W001-W004)."""
    parsed = conf.parsed()
    messages: list[CheckMessage] = []
    for problem in parsed.problems:
        kind = Error if problem.error else Warning
        messages.append(kind(problem.msg, hint=problem.hint, id=problem.id))
    alias = conf.REDIS_POOL_MIDDLEWARE_ALIAS
    # Beside other problems too (an alias that is defined but broken has its own error).
    if not parsed.setting_errors and alias not in parsed.aliases:
        configured = ", ".join(show("", a) for a in parsed.aliases) or "none"
        messages.append(
            Error(
                f"REDIS_POOL_MIDDLEWARE_ALIAS names the alias {show('', alias)}, which REDIS_POOL "
                f"does not define; configured: {configured}.",
                id="redis_pool.E010",
            )
        )
    if conf.DEBUG:
        messages += _credentials_in_urls()
    return messages


def _credentials_in_urls() -> list[CheckMessage]:
    """W004: Django's DEBUG error page and diffsettings mask only settings whose *name*
    looks secret (PASSWORD, TOKEN...), so a password inside a url is shown as it is."""
    aliases, _ = split_aliases(conf.REDIS_POOL)
    return [
        Warning(
            f"REDIS_POOL[{alias!r}]['url'] holds a credential, and DEBUG is on: Django's error "
            "page and diffsettings show it unmasked.",
            hint="Put the password in the 'password' key, read from the environment: the error "
            "page masks keys named like 'password' (diffsettings masks nothing); see "
            "docs/settings-secrets.md.",
            id="redis_pool.W004",
        )
        for alias, options in aliases.items()
        if isinstance(alias, str)
        and isinstance(options, dict)
        and has_credentials(options.get("url"))
    ]
