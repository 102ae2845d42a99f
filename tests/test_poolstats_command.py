"""``manage.py redis_poolstats``: the fleet table, --json, --watch, --alias, --local, exit
statuses, Redis down, and no secret in any output."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from redis_pool import get_pool, get_redis, monitor, pool_stats
from redis_pool.config.defaults import hostname
from tests.redis_server import LOOPBACK, RedisServer, env_with, free_port
from tests.test_fleet import PASSWORD, USER
from tests.test_stats import wait_for

ROOT = Path(__file__).resolve().parent.parent
RED, YELLOW = "\x1b[31;1m", "\x1b[33;1m"


@pytest.fixture(autouse=True)
def _monitor_stopped() -> Iterator[None]:
    monitor.stop()
    yield
    monitor.stop()


def run_command(*args: str, **options: Any) -> tuple[str, str, int]:
    """Run redis_poolstats in this process: (stdout, stderr, exit status)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("redis_poolstats", *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return out.getvalue(), f"CommandError: {exc}\n", exc.returncode
    return out.getvalue(), err.getvalue(), 0


def run_subprocess(url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = env_with(DJANGO_SETTINGS_MODULE="tests.fleet_app", FLEET_REDIS_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "django", "redis_poolstats", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def squeeze(text: str) -> str:
    """Collapse the column padding, so tests state rows, not widths."""
    return "\n".join(re.sub(" +", " ", line).rstrip() for line in text.splitlines())


@contextmanager
def holding(alias: str, count: int) -> Iterator[None]:
    pool = get_pool(alias)
    connections = [pool.get_connection() for _ in range(count)]
    try:
        yield
    finally:
        for connection in connections:
            pool.release(connection)


def test_the_table(fresh_server: RedisServer) -> None:
    settings = {"url": fresh_server.url, "max_connections": 4}
    with override_settings(REDIS_POOL=settings), holding("default", 1):
        monitor.publish_now()
        out, err, status = run_command()
    pid, host, port = os.getpid(), hostname(), fresh_server.port
    assert (err, status) == ("", 0)
    assert squeeze(out) == squeeze(
        f"default  redis://127.0.0.1:{port}/0\n"
        "  host pid age in use idle max peak waits timeouts errors server seen\n"
        f"  {host} {pid} 0s 1 0 4 1 0 0 0 1 0.0s\n"
        "  total 1 proc 1 0 4 0 0 0 1\n"
        "  server Redis 7.0.15: 3 clients connected, maxclients 10000, blocked 0, rejected 0\n"
        "          clients by name: redis_pool:tests:default 1, "
        "redis_pool_stats:tests:default 1, redis_poolstats (this command) 1\n"
        "  budget 4 max_connections + 1 stats + 0 other clients = 5 of maxclients 10000 "
        "(0.1%): ok\n"
    )


def test_the_json_schema(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL={"url": fresh_server.url}):
        get_redis().ping()
        monitor.publish_now()
        out, _, status = run_command("--json")
    assert status == 0
    document = json.loads(out)
    assert set(document) == {
        "schema",
        "view",
        "generated_at",
        "host",
        "pid",
        "exit_code",
        "aliases",
    }
    assert (document["schema"], document["view"], document["exit_code"]) == (1, "fleet", 0)
    [alias] = document["aliases"]
    assert set(alias) == {
        "alias",
        "address",
        "error",
        "note",
        "processes",
        "unpublished",
        "totals",
        "server",
        "budget",
    }
    [process] = alias["processes"]
    for key, kind in {
        "host": str,
        "pid": int,
        "in_use": int,
        "idle": int,
        "max_connections": int,
        "created": int,
        "high_water": int,
        "waits": int,
        "exhausted": int,
        "errors": int,
        "server_connections": int,
        "age_s": float,
        "seen_s": float,
        "status": str,
        "hold": dict,
    }.items():
        assert isinstance(process[key], kind), key
    assert (process["pid"], process["created"], process["status"]) == (os.getpid(), 1, "ok")
    server = alias["server"]
    assert (server["connected_clients"], server["maxclients"]) == (3, 10000)
    assert alias["budget"]["status"] == "ok"


def test_an_exhausted_pool_is_red_and_exits_4(fresh_server: RedisServer) -> None:
    settings = {"url": fresh_server.url, "max_connections": 2}
    with override_settings(REDIS_POOL=settings), holding("default", 2):
        monitor.publish_now()
        out, err, status = run_command(force_color=True)
        json_out, _, json_status = run_command("--json")
    assert (status, json_status) == (4, 4)
    assert err == "CommandError: Pool exhausted for alias(es): default.\n"
    [row] = [line for line in out.splitlines() if f" {os.getpid()} " in line]
    assert row.startswith(RED)
    process = json.loads(json_out)["aliases"][0]["processes"][0]
    assert (process["status"], process["in_use"]) == ("exhausted", 2)
    assert json.loads(json_out)["exit_code"] == 4


def test_a_pool_over_80_percent_is_yellow(fresh_server: RedisServer) -> None:
    settings = {"url": fresh_server.url, "max_connections": 10}
    with override_settings(REDIS_POOL=settings), holding("default", 9):
        monitor.publish_now()
        out, _, status = run_command(force_color=True)
    assert status == 0
    [row] = [line for line in out.splitlines() if f" {os.getpid()} " in line]
    assert row.startswith(YELLOW)


def test_a_fleet_that_could_exhaust_the_server_exits_5() -> None:
    with (
        RedisServer("--maxclients", "20") as server,
        override_settings(REDIS_POOL={"url": server.url, "max_connections": 30}),
    ):
        get_redis().ping()
        monitor.publish_now()
        out, err, status = run_command(force_color=True)
    assert status == 5
    assert err == "CommandError: Connection budget exceeded for alias(es): default.\n"
    [budget] = [line for line in out.splitlines() if "budget" in line]
    assert budget.startswith(RED)
    assert "30 max_connections + 1 stats + 0 other clients = 31 of maxclients 20" in budget
    assert "(155.0%): exceeded: the fleet at its limits would exhaust the server" in budget


def test_processes_not_publishing_are_shown_from_the_servers_side(
    fresh_server: RedisServer,
) -> None:
    pools = {
        "default": {"url": fresh_server.url},
        "quiet": {"url": fresh_server.url, "publish_stats": False},
    }
    with override_settings(REDIS_POOL=pools):
        get_redis().ping()
        get_redis("quiet").ping()
        monitor.publish_now()
        out, _, status = run_command("--alias", "quiet")
        document = json.loads(run_command("--alias", "quiet", "--json")[0])
    assert status == 0
    name = f"redis_pool:tests:quiet:{hostname()}:{os.getpid()}"
    assert f"  not publishing: {name} (1 connections)" in out
    assert "(no process has published" in out
    [alias] = document["aliases"]
    assert alias["unpublished"] == [{"client_name": name, "server_connections": 1}]
    assert alias["totals"]["unpublished_connections"] == 1


def test_alias_option_selects_and_unknown_alias_fails(fresh_server: RedisServer) -> None:
    pools = {"default": {"url": fresh_server.url}, "other": {"url": fresh_server.url}}
    with override_settings(REDIS_POOL=pools):
        out, _, status = run_command("--alias", "other")
        assert status == 0
        assert out.startswith("other  ")
        assert "\ndefault  " not in out
        _, err, status = run_command("--alias", "nope")
    assert status == 1
    assert "No Redis pool alias 'nope' in REDIS_POOL" in err


def test_local_is_this_process_only(fresh_server: RedisServer) -> None:
    with override_settings(REDIS_POOL={"url": fresh_server.url, "max_connections": 4}):
        get_redis().set("k", "v")
        out, _, status = run_command("--local")
        document = json.loads(run_command("--local", "--json")[0])
    assert status == 0
    assert out.startswith(f"default  redis://127.0.0.1:{fresh_server.port}/0  (pid {os.getpid()})")
    assert "  connections  0 in use, 1 idle, max 4\n" in out
    assert "  ping         " in out
    assert document["view"] == "local"
    [row] = document["aliases"]
    assert (row["pid"], row["error"], row["created"]) == (os.getpid(), None, 1)
    assert row["ping_ms"] > 0


def test_redis_down_says_so_per_alias_and_exits_3_without_traceback() -> None:
    dead = f"redis://{LOOPBACK}:{free_port()}/0"
    result = run_subprocess(dead)
    assert result.returncode == 3
    assert result.stdout == (
        f"default  {dead}\n"
        f"  Redis unreachable: ConnectionError: Error 111 connecting to {LOOPBACK}:"
        f"{dead.rsplit(':', 1)[1].split('/')[0]}. Connection refused.\n"
    )
    assert result.stderr == "CommandError: Redis unreachable for alias(es): default.\n"
    local = run_subprocess(dead, "--local", "--json")
    assert local.returncode == 3
    assert "Traceback" not in local.stderr
    assert "Connection refused" in json.loads(local.stdout)["aliases"][0]["error"]


def test_watch_refreshes_until_interrupted_then_exits_0(fresh_server: RedisServer) -> None:
    env = env_with(DJANGO_SETTINGS_MODULE="tests.fleet_app", FLEET_REDIS_URL=fresh_server.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "redis_poolstats", "--watch", "0.1", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        frames = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert [f["view"] for f in frames] == ["fleet"] * 3
        assert frames[0]["generated_at"] < frames[2]["generated_at"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_watch_table_frames_without_a_tty(fresh_server: RedisServer) -> None:
    # Bounded: the subprocess is interrupted after its second frame.
    env = env_with(DJANGO_SETTINGS_MODULE="tests.fleet_app", FLEET_REDIS_URL=fresh_server.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "redis_poolstats", "--watch", "0.1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        headers = 0
        while headers < 2:
            line = proc.stdout.readline()
            assert line, "the command ended early"
            assert "\x1b[" not in line  # not a terminal: no clearing, no colours
            headers += line.startswith("default  ")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_no_secret_in_any_output_published_value_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="redis_pool")
    acl = (USER, "on", f">{PASSWORD}", "~*", "&*", "+@all")
    outputs: list[str] = []
    with RedisServer("--user", *acl, password="admin_pw_4x") as server:
        url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0"
        pools = {"default": {"url": url, "leak_detection_threshold": 0.05}}
        with override_settings(REDIS_POOL=pools):
            with holding("default", 1):
                get_redis().ping()
                wait_for(lambda: any("leak" in r.getMessage() for r in caplog.records), 5, "a leak")
                monitor.publish_now()
                for args in ([], ["--json"], ["--local"], ["--local", "--json"]):
                    outputs.extend(run_command(*args)[:2])
            for key in server.command("KEYS", "redis_pool:*").split(b"\r\n"):
                if key.startswith(b"redis_pool:"):
                    outputs.append(server.command("DUMP", key.decode()).decode("latin-1"))
                    outputs.append(server.command("GET", key.decode()).decode("latin-1"))
            server.kill()
            monitor.publish_now()  # fails: logged
            outputs.extend(run_command()[:2])
            outputs.extend(run_command("--local")[:2])
        bad = f"redis://{USER}:wrong-{PASSWORD}@127.0.0.1:{server.port}/0"
        server.start()
        with override_settings(REDIS_POOL={"url": bad}):
            out, err, status = run_command()
            assert status == 3
            assert "invalid username-password pair" in out
            outputs.extend([out, err])
    outputs.extend(record.getMessage() for record in caplog.records)
    outputs.extend(str(record.exc_info) for record in caplog.records if record.exc_info)
    assert any("Possible connection leak" in text for text in outputs)
    assert any('"pid"' in text for text in outputs)
    text = "\n".join(outputs)
    assert USER not in text
    assert PASSWORD not in text


def test_keys_an_acl_refuses_and_sentinel_aliases_are_notes_not_errors() -> None:
    acl = (USER, "on", f">{PASSWORD}", "~app:*", "&*", "+@all")
    with RedisServer("--user", *acl, password="admin_pw_4x") as server:
        url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0"
        sentinel = {"sentinels": [("127.0.0.1", free_port())], "service_name": "mymaster"}
        with override_settings(REDIS_POOL={"default": {"url": url}, "ha": sentinel}):
            get_redis().set("app:k", "v")
            monitor.publish_now()  # refused by the ACL: counted, not raised
            assert pool_stats().publish_errors == 1
            out, err, status = run_command(force_color=True)
            document = json.loads(run_command("--json")[0])
    assert (status, err) == (0, "")
    lines = out.splitlines()
    refused = next(line for line in lines if "refused" in line)
    assert refused.startswith(YELLOW)
    assert "reading redis_pool:stats:default:* refused: " in refused
    assert any(line.startswith("  server  Redis 7.0.15") for line in lines)
    default, ha = document["aliases"]
    assert (default["error"], default["processes"]) == (None, [])
    # pool + publisher (a refusal keeps its healthy connection: issue 9 item 6) + reader
    assert default["server"]["connected_clients"] == 3
    assert ha["error"] is None
    assert "sentinel alias" in ha["note"]
    assert USER not in out + json.dumps(document)
