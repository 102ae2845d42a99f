"""redis_pool.contrib.debug_toolbar against the real django-debug-toolbar and a real server.

The pattern of the toolbar's own tests: a request through the test client with the toolbar
shown, the toolbar caught from its ``_created`` signal, the panel's stats read back (also
from the toolbar's store, as its render view reads them).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("debug_toolbar", reason="needs the [debug-toolbar] extra")

import redis
import redis.asyncio
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

from redis_pool import get_redis
from redis_pool.contrib.debug_toolbar import RedisPanel, recording
from redis_pool.contrib.debug_toolbar.commands import MASK, describe, describe_pipeline
from tests.redis_server import RedisServer
from tests.toolbar_settings import TOOLBAR

_caught: contextvars.ContextVar[Any] = contextvars.ContextVar("caught")


def toolbar_class() -> Any:
    # debug_toolbar.toolbar (and so tests.toolbar_urls) can only be imported with the
    # toolbar's app installed, as it defines a model: imported inside TOOLBAR's settings.
    from debug_toolbar.toolbar import DebugToolbar

    return DebugToolbar


def steps() -> dict[str, Any]:
    from tests import toolbar_urls

    return toolbar_urls.steps


def _catch(sender: Any, toolbar: Any = None, **kwargs: Any) -> None:
    _caught.set(toolbar)


@pytest.fixture(autouse=True)
def toolbar_settings() -> Iterator[None]:
    # Three steps: Django installs INSTALLED_APPS before it overrides the other settings, the
    # toolbar's ready() reads STATIC_URL, and its receiver for DEBUG_TOOLBAR_* imports a
    # module that defines a model (so it needs the app installed).
    first = {k: v for k, v in TOOLBAR.items() if not k.startswith(("INSTALLED", "DEBUG_TOOLBAR"))}
    last = {k: v for k, v in TOOLBAR.items() if k.startswith("DEBUG_TOOLBAR")}
    with (
        override_settings(**first),
        override_settings(INSTALLED_APPS=TOOLBAR["INSTALLED_APPS"]),
        override_settings(**last),
    ):
        # As the toolbar's own ToolbarTestClient: the signal fires in the request's context.
        toolbar_class()._created.connect(_catch)
        try:
            yield
        finally:
            toolbar_class()._created.disconnect(_catch)
    steps().clear()
    assert not recording.installed()


def get(path: str, **extra: Any) -> tuple[HttpResponse, Any]:
    def run() -> tuple[HttpResponse, Any]:
        _caught.set(None)
        response = Client().get(path, **extra)
        return response, _caught.get()

    return contextvars.copy_context().run(run)


async def aget(path: str) -> tuple[HttpResponse, Any]:
    _caught.set(None)
    response = await AsyncClient().get(path)
    return response, _caught.get()


def stats_of(toolbar: Any) -> dict[str, Any]:
    assert toolbar is not None, "the toolbar was not shown for this request"
    live = toolbar.get_panel_by_id("RedisPanel").get_stats()
    stored = toolbar_class().fetch(toolbar.request_id, "RedisPanel")
    assert stored is not None
    # What the toolbar's render view shows is what went through its JSON store.
    assert stored.get_panel_by_id("RedisPanel").get_stats() == json.loads(json.dumps(live))
    return dict(live)


def test_sync_view_commands_times_and_pool_state() -> None:
    response, toolbar = get("/commands/")
    assert response.status_code == 200
    assert b"<body>True" in response.content  # recording while the view ran
    stats = stats_of(toolbar)
    calls = stats["calls"]
    assert [(c["alias"], c["command"], c["key"]) for c in calls] == [
        ("default", "SET", "greeting"),
        ("default", "GET", "greeting"),
        ("default", "MULTI … EXEC (2)", ""),
    ]
    # Arguments truncated: the 500-character value shows as 60.
    assert calls[0]["args"] == "greeting " + "x" * 59 + "…"
    assert calls[2]["args"] == "INCRBY counter 1; EXPIRE counter 60"
    assert all(c["time_ms"] > 0 and c["error"] == "" for c in calls)
    assert stats["total_calls"] == 3
    assert stats["total_time_ms"] == pytest.approx(sum(c["time_ms"] for c in calls), abs=0.01)
    # The view held one connection of the pool while it ran its commands.
    assert all(c["in_use"] == 1 and c["waiting"] == 0 for c in calls)
    (pool,) = stats["pools"]
    assert pool["alias"] == "default"
    assert pool["calls"] == 3
    assert pool["in_use_peak"] == 1
    assert pool["in_use_end"] == 0
    assert pool["max_connections"] == get_redis().connection_pool.max_connections
    # Three commands (the held connection was checked out before the first command).
    assert pool["checkouts"] == 3
    assert not recording.installed()


def test_async_view_commands() -> None:
    response, toolbar = asyncio.run(aget("/acommands/"))
    assert response.status_code == 200
    assert b"<body>True" in response.content
    stats = stats_of(toolbar)
    assert [(c["alias"], c["command"], c["key"], c["args"]) for c in stats["calls"]] == [
        ("default", "SET", "agreeting", "agreeting hello"),
        ("default", "GET", "agreeting", "agreeting"),
        ("default", "PIPELINE (2)", "", "INCRBY acounter 1; EXPIRE acounter 60"),
    ]
    assert all(c["in_use"] == 0 for c in stats["calls"])
    (pool,) = stats["pools"]
    assert pool["pool_class"].startswith("Async")


def test_sync_view_under_asgi_and_async_view_under_wsgi() -> None:
    # Django runs the view in a thread (sync_to_async) or on a loop of its own
    # (async_to_sync): both copy the request's context, so the recorder follows.
    _, toolbar = asyncio.run(aget("/plain/"))
    assert [(c["alias"], c["command"]) for c in stats_of(toolbar)["calls"]] == [
        ("default", "SET"),
        ("default", "GET"),
    ]
    _, toolbar = get("/acommands/")
    assert [c["command"] for c in stats_of(toolbar)["calls"]] == ["SET", "GET", "PIPELINE (2)"]


def test_panel_renders_in_the_toolbar() -> None:
    response, toolbar = get("/commands/")
    assert toolbar is not None
    rendered = Client().get(
        "/__debug__/render_panel/",
        {"request_id": toolbar.request_id, "panel_id": "RedisPanel"},
    )
    assert rendered.status_code == 200
    content = rendered.json()["content"]
    assert "<code>MULTI … EXEC (2)</code>" in content
    assert "<td>default</td>" in content
    panel = toolbar.get_panel_by_id("RedisPanel")
    assert panel.nav_subtitle.startswith("3 commands in ")
    assert "RedisPanel_total_time" in response.headers["Server-Timing"]


def test_two_threads_see_only_their_own_commands() -> None:
    steps()["barrier"] = threading.Barrier(2)
    results: dict[str, dict[str, Any]] = {}

    def request(tag: str) -> None:
        response, toolbar = get(f"/tagged/{tag}/")
        assert response.status_code == 200
        results[tag] = stats_of(toolbar)

    threads = [threading.Thread(target=request, args=(tag,)) for tag in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for tag in ("left", "right"):
        keys = [c["key"] for c in results[tag]["calls"]]
        assert keys == [f"{tag}:0", f"{tag}:1", f"{tag}:2"]


def test_two_async_requests_see_only_their_own_commands() -> None:
    steps().update(left=-1, right=-1)

    async def both() -> list[tuple[HttpResponse, Any]]:
        return await asyncio.gather(aget("/atagged/left/"), aget("/atagged/right/"))

    (_, left), (_, right) = asyncio.run(both())
    for tag, toolbar in (("left", left), ("right", right)):
        keys = [c["key"] for c in stats_of(toolbar)["calls"]]
        assert keys == [f"{tag}:0", f"{tag}:1", f"{tag}:2"]


def test_no_recording_when_the_toolbar_is_not_shown() -> None:
    original = redis.Redis.execute_command
    with override_settings(DEBUG=False):
        response, toolbar = get("/commands/")
    assert toolbar is None
    assert b"<body>False" in response.content
    assert redis.Redis.execute_command is original


def test_no_recording_when_the_panel_is_switched_off() -> None:
    response, toolbar = get("/commands/", HTTP_COOKIE="djdtRedisPanel=off")
    assert toolbar is not None  # the toolbar ran, without our panel
    assert b"<body>False" in response.content
    assert toolbar.get_panel_by_id("RedisPanel").get_stats() == {}


def test_wrappers_come_off_after_the_last_request() -> None:
    originals = [cls.__dict__[name] for cls, name, *_ in recording._TARGETS]
    recording.acquire()
    recording.acquire()
    recording.release()
    assert recording.installed()
    assert redis.asyncio.Redis.__dict__["execute_command"] is not originals[3]
    recording.release()
    recording.release()  # one too many: ignored
    assert not recording.installed()
    assert [cls.__dict__[name] for cls, name, *_ in recording._TARGETS] == originals


def test_panel_directly_as_the_toolbars_panel_tests_do() -> None:
    # tests/base.py of django-debug-toolbar: a toolbar around a RequestFactory request.
    request = RequestFactory().get("/")
    toolbar = toolbar_class()(request, lambda request: HttpResponse())
    panel = toolbar.get_panel_by_id("RedisPanel")
    assert isinstance(panel, RedisPanel)
    panel.enable_instrumentation()
    panel.enable_instrumentation()  # idempotent
    try:
        get_redis().incr("direct")
        with pytest.raises(redis.ResponseError):
            get_redis().execute_command("NOSUCHCOMMAND", "k")
        mine = redis.Redis.from_url(_url())
        try:
            mine.ping()
        finally:
            mine.close()
    finally:
        panel.disable_instrumentation()
        panel.disable_instrumentation()
    get_redis().incr("after")  # not recorded
    panel.generate_stats(request, HttpResponse())
    calls = panel.get_stats()["calls"]
    assert [(c["alias"], c["command"], c["error"]) for c in calls] == [
        ("default", "INCRBY", ""),
        ("default", "NOSUCHCOMMAND", "ResponseError"),
        ("(Redis, not redis_pool)", "PING", ""),
    ]
    assert calls[2]["in_use"] is None


def _url() -> str:
    from django.conf import settings

    return str(settings.REDIS_URL)


def test_secrets_never_shown(fresh_server: RedisServer) -> None:
    password = "s3cret-never-in-the-panel"
    steps()["password"] = password
    with override_settings(REDIS_POOL={"default": {"url": fresh_server.url}}):
        response, toolbar = get("/secrets/")
    assert response.status_code == 200
    stats = stats_of(toolbar)
    commands = [(c["command"], c["args"]) for c in stats["calls"]]
    assert commands[0] == ("ACL SETUSER", f"panel-user {MASK} {MASK} {MASK} {MASK} {MASK}")
    assert commands[1] == ("AUTH", f"{MASK} {MASK}")
    assert commands[2] == ("HELLO", f"3 AUTH {MASK} {MASK} SETNAME shown")
    assert commands[3] == ("CONFIG SET", f"requirepass {MASK}")
    assert commands[4] == ("MIGRATE", f"127.0.0.1 1  0 100 AUTH2 {MASK} {MASK} KEYS absent")
    assert commands[5] == ("MIGRATE", f"127.0.0.1 1  0 100 AUTH {MASK} KEYS absent")
    assert password not in json.dumps(stats)
    rendered = Client().get(
        "/__debug__/render_panel/",
        {"request_id": toolbar.request_id, "panel_id": "RedisPanel"},  # type: ignore[union-attr]
    )
    assert password not in rendered.content.decode()


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("AUTH", "pw"), ("AUTH", MASK, MASK)),
        (("ACL SETUSER", "u", "on", ">pw"), ("ACL SETUSER", "", f"u {MASK} {MASK}")),
        (("CONFIG SET", "requirepass", "pw"), ("CONFIG SET", "", f"requirepass {MASK}")),
        ((b"auth", b"user", b"pw"), ("AUTH", MASK, f"{MASK} {MASK}")),
        (("hello", 3, "auth", "u", "pw"), ("HELLO", "3", f"3 auth {MASK} {MASK}")),
        (("CONFIG", "SET", "maxmemory", "1mb", "masterauth", "pw"),
         ("CONFIG SET", "", f"maxmemory 1mb masterauth {MASK}")),
        (("SENTINEL", "SET", "mymaster", "auth-pass", "pw", "quorum", "2"),
         ("SENTINEL SET", "", f"mymaster auth-pass {MASK} quorum 2")),
        (("SENTINEL", "CONFIG", "SET", "sentinel-pass", "pw"),
         ("SENTINEL CONFIG", "", f"SET sentinel-pass {MASK}")),
        (("GET", b"\xff\xfe"), ("GET", "\ufffd\ufffd", "\ufffd\ufffd")),
        (("MGET", *[f"k{i}" for i in range(15)]),
         ("MGET", "k0", " ".join(f"k{i}" for i in range(12)) + " … (+3 more)")),
        ((), ("", "", "")),
    ],
)  # fmt: skip
def test_describe(args: tuple[Any, ...], shown: tuple[str, str, str]) -> None:
    assert describe(args) == shown


def test_describe_pipeline_is_bounded_and_masked() -> None:
    line = describe_pipeline([("AUTH", "pw"), *[("SET", f"key{i}", "v" * 50) for i in range(20)]])
    assert line.startswith(f"AUTH {MASK}; SET key0 ")
    assert "pw" not in line.split(";")[0]
    assert len(line) == 400
    assert line.endswith("…")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from tests.topology_servers import ClusterSetup

    setup = ClusterSetup(masters=3).start()
    try:
        yield setup
    finally:
        setup.cleanup()


@pytest.mark.slow
def test_cluster_alias_commands_are_named_by_alias(cluster: Any) -> None:
    url = f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}"
    with override_settings(REDIS_POOL={"default": {"url": url}}):
        _, toolbar = get("/plain/")
        _, atoolbar = asyncio.run(aget("/acommands/"))
    stats = stats_of(toolbar)
    # The client was built in this request: its discovery (CLUSTER SLOTS, through a node's
    # client) shows first. Then one record per command: the cluster client's, not its node
    # client's as well.
    calls = [(c["alias"], c["command"], c["key"]) for c in stats["calls"]]
    assert calls[0] == ("default", "CLUSTER SLOTS", "")
    assert calls[-2:] == [("default", "SET", "greeting"), ("default", "GET", "greeting")]
    assert all(call[0] == "default" for call in calls)
    astats = stats_of(atoolbar)
    # A cluster pipeline is not listed (docs/debug-toolbar.md: limits).
    assert [(c["alias"], c["command"]) for c in astats["calls"]] == [
        ("default", "SET"),
        ("default", "GET"),
    ]


def test_without_the_extra_the_import_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    for name in [m for m in sys.modules if m.startswith("redis_pool.contrib.debug_toolbar")]:
        monkeypatch.delitem(sys.modules, name)
    # As if not installed (only the module the panel imports: the toolbar's own teardown of
    # this test's settings still needs the rest).
    monkeypatch.setitem(sys.modules, "debug_toolbar.panels", None)
    with pytest.raises(ImportError, match=r"pip install 'django-redis-pool\[debug-toolbar\]'"):
        importlib.import_module("redis_pool.contrib.debug_toolbar")
