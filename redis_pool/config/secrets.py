"""All masking: what may hold a credential is masked here, by one set of rules.

Settings are masked where they are shown (``show``, ``mask_url``); text from the outside
world (a redis-py error, a server reply) is cleaned with ``redact``; addresses shown for
an alias or one of its nodes are built by ``masked_address``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_KEYS = frozenset({"password", "username", "ssl_password", "credential_provider"})
MASK = "********"
# Redis's built-in user: not a secret, and masking it would garble every message that
# mentions the 'default' alias.
DEFAULT_USER = "default"


def mask_url(url: object) -> str:
    """``url`` with any username and password replaced, safe to show anywhere.

    Does not trust ``urlsplit``: a password with an unescaped '/', '?' or '#' would end its
    netloc early. Everything between '://' and the last '@' is credentials, whatever it holds.
    """
    if not isinstance(url, str):
        return "<invalid url>"
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = f"{MASK}@{rest.rsplit('@', 1)[1]}"
    # unix:// URLs may carry credentials in the query string.
    rest = re.sub(r"(?i)((?:password|username|ssl_password)=)[^&#]*", rf"\g<1>{MASK}", rest)
    return f"{scheme}{sep}{rest}"


def has_credentials(url: Any) -> bool:
    """Does ``url`` carry a username or password (the userinfo part or a query parameter)?"""
    return isinstance(url, str) and mask_url(url) != url


def redact(text: str, kwargs: Mapping[str, Any]) -> str:
    """``text`` (a foreign error message, a server reply) with every secret value of the
    connection ``kwargs`` replaced; the username ``default`` is no secret."""
    for key in SECRET_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str) and value and not (key == "username" and value == DEFAULT_USER):
            text = text.replace(value, MASK)
    return text


def masked(value: Any, depth: int = 0) -> Any:
    """``value`` with anything that may hold a credential masked: a string that looks like
    a URL (or ``user:pw@host``), and the value of a secret key in a dict, at any depth."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value or "@" in value else value
    if depth > 4:
        return "..."
    if isinstance(value, Mapping):
        return {
            masked(k, depth + 1): MASK
            if k in SECRET_KEYS and v is not None
            else masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(masked(v, depth + 1) for v in value)
    if isinstance(value, (set, frozenset)):
        return {masked(v, depth + 1) for v in value}
    return value


def show(key: str, value: Any) -> str:
    """repr() of a setting value for a message, with secrets masked."""
    if key in SECRET_KEYS and value is not None:
        return repr(MASK)
    text = repr(masked(value))
    return text if len(text) <= 80 else text[:77] + "..."


def masked_address(
    kwargs: Mapping[str, Any], transport: str, hosts: str, *, kind: str = "", path: str = ""
) -> str:
    """How an alias or node is shown: ``redis[s][+kind]://[********@]hosts[path]``.

    ``hosts`` is ``host:port`` (or several, comma-separated); the credentials of
    ``kwargs`` become one mask, whatever they are.
    """
    scheme = "rediss" if transport == "ssl" else "redis"
    if kind:
        scheme = f"{scheme}+{kind}"
    creds = f"{MASK}@" if kwargs.get("password") or kwargs.get("username") else ""
    return f"{scheme}://{creds}{hosts}{path}"


def node_address(kwargs: Mapping[str, Any], transport: str, host: str, port: int) -> str:
    """The masked address of one server (a Cluster node, a Sentinel master or replica)."""
    return masked_address(kwargs, transport, f"{host}:{port}")
