"""ACL users against a real redis-server: a user limited to ``app:*`` keys and to the
read, write and connection commands (tests/topology_servers.py ``ACLServer``)."""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from redis.exceptions import AuthenticationError, NoPermissionError

from redis_pool import get_redis, pool_stats
from tests.settings import REDIS_URL
from tests.topology_servers import ACL_PASSWORD, ACL_USER, ACLServer

PREFIX = "redis_pool:tests:acl:"
WRONG_PASSWORD = "not-the-Pa55word"


@pytest.fixture(scope="module")
def server() -> Iterator[ACLServer]:
    acl = ACLServer().start()
    try:
        yield acl
    finally:
        acl.cleanup()


@pytest.fixture(autouse=True)
def _flush(server: ACLServer) -> None:
    server.command("FLUSHALL")  # as the default user, through the harness's raw socket


def alias_acl(**options: Any) -> Any:
    return override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "acl": options})


def url(server: ACLServer, user: str = ACL_USER, password: str = ACL_PASSWORD) -> str:
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"


def test_limited_user_runs_what_it_may(server: ACLServer) -> None:
    with alias_acl(url=url(server)):
        client = get_redis("acl")
        client.set("app:k", "v")
        assert client.get("app:k") == b"v"
        [ours] = server.clients_named(PREFIX)
        assert ours["user"] == ACL_USER


def test_username_and_password_keys(server: ACLServer) -> None:
    with alias_acl(host="127.0.0.1", port=server.port, username=ACL_USER, password=ACL_PASSWORD):
        assert get_redis("acl").ping() is True
        assert pool_stats("acl").address == f"redis://********@127.0.0.1:{server.port}/0"


def test_noperm_is_clear(server: ACLServer) -> None:
    with alias_acl(url=url(server)):
        client = get_redis("acl")
        with pytest.raises(
            NoPermissionError, match=r"^this user has no permissions to run the 'flushall' command$"
        ):
            client.flushall()
        with pytest.raises(
            NoPermissionError,
            match=r"^this user has no permissions to access one of the keys used as arguments$",
        ):
            client.get("other:k")
        # A refused command is an answer, not a broken connection: nothing was reopened.
        assert client.get("app:k") is None
        assert pool_stats("acl").created == 1


def test_wrong_password_names_the_alias_never_the_secret(
    server: ACLServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with alias_acl(url=url(server, password=WRONG_PASSWORD)):
        with pytest.raises(AuthenticationError) as caught:
            get_redis("acl").ping()
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("redis_poolstats", "--alias", "acl", "--local", stdout=out, stderr=err)
    assert str(caught.value) == (
        f"Redis alias 'acl' could not authenticate to 127.0.0.1:{server.port}: invalid "
        "username-password pair or user is disabled. Check the alias's 'username' and "
        "'password' (not shown)."
    )
    shown = "".join(
        [
            repr(caught.value),
            *traceback.format_exception(caught.value),
            out.getvalue(),
            err.getvalue(),
            str(failed.value),
            caplog.text,
        ]
    )
    assert "acl" in out.getvalue()
    for secret in (WRONG_PASSWORD, ACL_PASSWORD, ACL_USER):
        assert secret not in shown


def test_a_user_that_may_not_name_its_connections(server: ACLServer) -> None:
    # redis-py sends CLIENT SETNAME on every new connection when a client_name is set, and
    # redis_pool sets one by default: a user without +client|setname is refused, clearly.
    server.add_user("unnamed_user", "on", ">pw-unnamed", "~*", "+@all", "-client|setname")
    with (
        alias_acl(url=url(server, "unnamed_user", "pw-unnamed")),
        pytest.raises(NoPermissionError, match=re.escape("'client|setname' command")),
    ):
        get_redis("acl").ping()
    # An empty client_name sends none.
    with alias_acl(url=url(server, "unnamed_user", "pw-unnamed"), client_name=""):
        assert get_redis("acl").ping() is True


def _connections_received(server: ACLServer) -> int:
    info = server.command("INFO", "stats").decode()
    return int(re.search(r"total_connections_received:(\d+)", info)[1])  # type: ignore[index]


def test_refused_stats_keys_keep_the_connection_and_back_off(
    server: ACLServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The README's minimal user may not touch redis_pool:stats:*: every publish is refused
    # (NOPERM) on a healthy connection. Before the fix the publisher dropped that connection
    # and opened a new one every interval (15 in 3 s at 0.2 s); it must keep it, back off,
    # and say so once.
    caplog.set_level(logging.DEBUG, logger="redis_pool.stats")
    interval, watch = 0.2, 3.0
    with alias_acl(url=url(server), publish_interval=interval):
        get_redis("acl").set("app:k", "v")  # the pool's first connection starts the monitor
        deadline = time.monotonic() + 5
        while pool_stats("acl").publish_errors == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool_stats("acl").publish_errors == 1
        before = _connections_received(server)
        time.sleep(watch)
        opened = _connections_received(server) - before - 1  # -1: INFO's own raw socket
        errors = pool_stats("acl").publish_errors
    assert opened == 0, f"{opened} new connections in {watch} s"
    # Capped exponential back-off: 0.2, 0.4, 0.8, 1.6 s... a handful of attempts, not 15.
    assert 2 <= errors <= 5
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING
    assert ACL_PASSWORD not in caplog.text
