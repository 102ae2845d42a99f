"""Stages of ``alias.parse_alias`` that check the connection keys: names, url, values, and
the transport they select. Each returns what it found; none changes what it is given."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redis.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.connection import parse_url as redis_parse_url

from redis_pool.config.keys import (
    MAX_CONNECTIONS_LIMIT,
    RESERVED_KEYS,
    SSL,
    TCP,
    UNIX,
    Transport,
    did_you_mean,
    keys_by_transport,
    known_keys,
    type_problem,
)
from redis_pool.config.problems import Problem
from redis_pool.config.secrets import show

BAD_ESCAPE = "it could not be parsed (a reserved character in the password must be %-escaped)"


def check_keys(where: str, options: Mapping[Any, Any]) -> list[Problem]:
    """E003: every key that is not a setting."""
    keys = known_keys()
    found: list[Problem] = []
    for key, value in options.items():
        if isinstance(key, str) and key in keys:
            continue
        hint = did_you_mean(key, keys) if isinstance(key, str) else None
        if key == "timeout":
            hint = (
                f"For how long one command may take, use 'socket_timeout': {show('', value)}; "
                f"for how long to wait for a free connection, 'pool_timeout': "
                f"{show('', value)}."
            )
        elif isinstance(key, str) and key in RESERVED_KEYS:
            hint = "redis_pool chooses this itself; use 'pool_timeout' to set the wait."
        got = f" (got {show('', value)})" if key == "timeout" else ""
        found.append(
            Problem(
                "redis_pool.E003",
                f"{where} has an unknown key {show('', key)}{got}.",
                hint or "Keys are redis-py ConnectionPool keyword arguments, plus 'url'.",
            )
        )
    return found


def _url_problem(url: str, from_url: Mapping[str, Any] | None) -> str | None:
    """Why ``url`` is not usable, in our own words (redis-py's may quote the password)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "the scheme must be redis://, rediss:// or unix://"
    if from_url is None:
        return BAD_ESCAPE
    rest = url.split("://", 1)[1]
    authority, _, path = rest.rsplit("@", 1)[-1].partition("/")
    if url.startswith("unix://"):
        return None if from_url.get("path") else "it names no socket path"
    if "?" in authority or "#" in authority:
        return BAD_ESCAPE
    port = re.search(r":(\d+)$", authority)
    if port is not None and int(port[1]) == 0:  # redis-py would silently use 6379
        return "port 0 is not a port: use 1-65535, or leave it out for 6379"
    path = path.split("?", 1)[0].strip("/")
    if path and "db" not in from_url:
        return f"the path {path!r} is not a database number"
    return None


def parse_url(
    where: str, options: Mapping[str, Any], url: Any
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The keyword arguments ``url`` (made plain) gives ({} without a url), None if it is
    invalid; and the problems: E005, E003 for an unknown query parameter, E007 for a key
    set twice."""
    if not isinstance(url, str):
        return {}, []  # no url, or not a string (E004)
    try:
        from_url: dict[str, Any] | None = redis_parse_url(url)  # type: ignore[no-untyped-call]
    except Exception:  # ValueError and friends; their text may quote the password
        from_url = None
    reason = _url_problem(url, from_url)
    if reason is not None or from_url is None:
        problem = Problem(
            "redis_pool.E005",
            f"{where}['url'] is not a valid Redis URL: {show('url', url)} ({reason}).",
            "Use redis://[[user]:password@]host[:port][/db], rediss://... or "
            "unix:///path/to.sock[?db=N].",
        )
        return None, [problem]
    keys = known_keys()
    found = [
        Problem(
            "redis_pool.E003",
            f"{where}['url'] has an unknown query parameter {key!r}.",
            did_you_mean(key, keys)
            or "Query parameters are redis-py connection keyword arguments.",
        )
        for key in from_url
        if key not in keys
    ]
    found += [
        Problem(
            "redis_pool.E007",
            f"{where} sets {key!r} both in 'url' and as a key "
            f"(url gives {show(key, from_url[key])}, key gives {show(key, options[key])}).",
            "Set it in one place only.",
        )
        for key in from_url
        if key in options and key != "connection_class"
    ]
    return from_url, found


def check_values(
    where: str, options: Mapping[Any, Any], from_url: Mapping[str, Any], url: str
) -> list[Problem]:
    """E004 and E006: every value, from a key or from the url, through the one validator of
    its key, so that a value reaching redis-py is checked once, the same way."""
    try:
        query = set(parse_qs(urlsplit(url).query, keep_blank_values=True)) if from_url else set()
    except ValueError:  # parse_url accepted it, so this is only belt and braces
        query = set()
    values = [(k, v, f"{where}[{k!r}]") for k, v in options.items() if isinstance(k, str)]
    for key, value in from_url.items():
        if key not in options:
            label = "query parameter" if key in query else "gives"
            values.append((key, value, f"{where}['url'] {label} {key!r}"))
    rule = f"must be a positive integer of at most {MAX_CONNECTIONS_LIMIT:,}"
    found: list[Problem] = []
    for key, value, label in values:
        expected = type_problem(key, value)
        if expected is not None:
            msg = f"{label} must be {expected}, got {show(key, value)}."
            found.append(Problem("redis_pool.E004", msg))
        elif (
            key == "max_connections"
            and not 0 < (1 if value is None else value) <= MAX_CONNECTIONS_LIMIT
        ):
            found.append(Problem("redis_pool.E006", f"{label} {rule}, got {value!r}."))
    return found


def _connection_class(options: Mapping[str, Any], kwargs: Mapping[str, Any]) -> Any:
    conn_class = kwargs.get("connection_class")
    if conn_class is not None:
        return conn_class
    if "path" in kwargs:
        return UnixDomainSocketConnection
    return SSLConnection if options.get("ssl") else Connection


def transport_of(
    where: str, options: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> tuple[Transport | None, dict[str, Any], list[Problem]]:
    """The transport the connection class selects (None if unusable), ``kwargs`` with that
    class, and the problems: E004 for a connection_class that is not one, E008 for keys of
    another transport, E007 for a unix socket with a host."""
    conn_class = _connection_class(options, kwargs)
    kwargs = {**kwargs, "connection_class": conn_class}
    if not (isinstance(conn_class, type) and issubclass(conn_class, AbstractConnection)):
        msg = (
            f"{where}['connection_class'] must be a redis-py connection class, "
            f"got {show('connection_class', conn_class)}."
        )
        return None, kwargs, [Problem("redis_pool.E004", msg)]
    transport: Transport = TCP
    if issubclass(conn_class, UnixDomainSocketConnection):
        transport = UNIX
    elif issubclass(conn_class, SSLConnection):
        transport = SSL
    allowed = keys_by_transport()[transport]
    found = [
        Problem(
            "redis_pool.E008",
            f"{where}[{key!r}] does not apply to a {transport} connection.",
            "ssl_* keys need a rediss:// url or 'ssl': True; 'path' means a unix socket.",
        )
        for key in options
        if key not in allowed
    ]
    if transport == UNIX and "host" in options:
        found.append(
            Problem("redis_pool.E007", f"{where} sets both 'path' (unix socket) and 'host'.")
        )
    return transport, kwargs, found
