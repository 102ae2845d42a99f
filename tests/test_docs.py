"""The docs stay in step with the code: settings keys and defaults, check IDs, the public API
and the command's options. A new one of any of these fails here until it is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import redis
from django.core.management import load_command_class
from django.core.management.base import BaseCommand
from django.test import override_settings

import redis_pool
from redis_pool import get_pool

# Internal: the settings parser's own key sets, constants of the config layer.
from redis_pool.config.keys import RESERVED_KEYS, known_keys

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "redis_pool"

BACKTICKED_KEY = re.compile(r"`([a-z][a-z0-9_]*)`")
CHECK_ID = re.compile(r"redis_pool\.[EW]\d{3}")
# A key that only some supported redis-py versions accept says so in its row.
NEWER_REDIS_PY = re.compile(r"redis-py (\d+) and later")


def out_of_step(page: str, documented: set[str], actual: set[str]) -> str:
    return (
        f"docs/{page} is out of step with the code.\n"
        f"  in the code but not documented: {sorted(actual - documented)}\n"
        f"  documented but not in the code: {sorted(documented - actual)}"
    )


def sections(page: str) -> dict[str, list[str]]:
    """The page's lines by ``## `` section (the text before the first one under "")."""
    result: dict[str, list[str]] = {"": []}
    current = ""
    for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            result[current] = []
        else:
            result[current].append(line)
    return result


def keys_in(lines: list[str]) -> dict[str, str]:
    """``{key: the line naming it}`` for keys named in ``### `` headings and first table
    cells: where the reference documents a key, as opposed to mentioning it in prose."""
    found: dict[str, str] = {}
    for line in lines:
        if line.startswith("### "):
            names = line
        elif line.startswith("|"):
            names = line.split("|")[1]
        else:
            continue
        for key in BACKTICKED_KEY.findall(names):
            found[key] = line
    return found


def settings_reference() -> tuple[dict[str, str], set[str]]:
    """(accepted keys with their lines, refused keys) of docs/settings.md."""
    accepted: dict[str, str] = {}
    refused: set[str] = set()
    for title, lines in sections("settings.md").items():
        if title.startswith("Keys redis_pool refuses"):
            refused |= set(keys_in(lines))
        elif title != "Other settings":
            accepted.update(keys_in(lines))
    return accepted, refused


def test_settings_reference_documents_every_accepted_key() -> None:
    documented, _ = settings_reference()
    actual = set(known_keys())
    redis_major = int(redis.__version__.split(".")[0])
    for key in set(documented) - actual:  # documented for a newer redis-py than this one
        newer = NEWER_REDIS_PY.search(documented[key])
        if newer and redis_major < int(newer[1]):
            actual.add(key)
    assert set(documented) == actual, out_of_step("settings.md", set(documented), actual)


def test_settings_reference_lists_the_refused_keys() -> None:
    _, refused = settings_reference()
    assert refused == set(RESERVED_KEYS), out_of_step("settings.md", refused, set(RESERVED_KEYS))


def documented_default(key: str) -> float:
    """The number in "Default: **N**" under the key's ``### `` heading."""
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    match = re.search(rf"^### `{key}`\n\nDefault: \*\*([\d.]+)\*\*", text, re.MULTILINE)
    assert match, f"docs/settings.md: no 'Default: **N**' right under '### `{key}`'"
    return float(match[1])


def test_settings_reference_defaults_are_the_pools_defaults() -> None:
    # Built from nothing but a URL: the defaults are what the pool ends up with. No network.
    with override_settings(REDIS_POOL={"url": "redis://127.0.0.1:6379/0"}):
        pool = get_pool()
        built = {
            "max_connections": pool.max_connections,
            "pool_timeout": getattr(pool, "timeout", None),
            "socket_connect_timeout": pool.connection_kwargs["socket_connect_timeout"],
            "socket_timeout": pool.connection_kwargs["socket_timeout"],
            "health_check_interval": pool.connection_kwargs["health_check_interval"],
        }
    documented = {key: documented_default(key) for key in built}
    assert documented == built


def test_checks_page_lists_every_check_id() -> None:
    in_code = {
        check_id
        for path in PACKAGE.rglob("*.py")
        for check_id in CHECK_ID.findall(path.read_text(encoding="utf-8"))
    }
    text = (DOCS / "checks.md").read_text(encoding="utf-8")
    documented = {
        check_id
        for line in text.splitlines()
        if line.startswith("### ")
        for check_id in CHECK_ID.findall(line)
    }
    assert documented == in_code, out_of_step("checks.md", documented, in_code)


def test_api_page_documents_the_public_api_only() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(\w+)`$", text, re.MULTILINE))
    public = set(redis_pool.__all__)
    assert documented == public, out_of_step("api.md", documented, public)


def test_command_page_documents_every_option() -> None:
    def options(command: BaseCommand) -> set[str]:
        parser = command.create_parser("manage.py", "redis_poolstats")
        return {o for action in parser._actions for o in action.option_strings}

    ours = options(load_command_class("redis_pool", "redis_poolstats")) - options(BaseCommand())
    ours = {o for o in ours if o.startswith("--")}
    text = (DOCS / "command.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(--[a-z-]+)", text, re.MULTILINE))
    assert documented == ours, out_of_step("command.md", documented, ours)


def test_statistics_page_documents_every_pool_stats_field() -> None:
    lines = sections("statistics.md")["Per-process statistics"]
    documented = {
        name
        for line in lines
        if line.startswith("| `")
        for name in BACKTICKED_KEY.findall(line.split("|")[1])
    }
    fields = {field.name for field in dataclasses.fields(redis_pool.PoolStats)}
    assert documented == fields, out_of_step("statistics.md", documented, fields)
