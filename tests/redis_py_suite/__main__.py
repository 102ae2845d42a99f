"""Run redis-py's pool test suite against redis_pool's pools: ``python -m tests.redis_py_suite``.

Extra arguments go to pytest. Exit status: pytest's.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tests.redis_server import RedisServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FILES = (
    "tests/test_connection_pool.py",
    "tests/test_asyncio/test_connection_pool.py",
    "tests/test_connection.py",
    "tests/test_multiprocessing.py",
)
# What redis-py's tests need beyond ours (its dev_requirements.txt).
PLUGINS = {"pytest_asyncio": "pytest-asyncio>=0.24", "pytest_timeout": "pytest-timeout"}


def cache_dir(version: str) -> Path:
    base = ROOT / ".venv" if (ROOT / ".venv").is_dir() else Path(tempfile.gettempdir())
    return base / "redis-py-suite" / version


def fetch(version: str) -> Path:
    """redis-py's sdist ``tests/`` (and its pytest settings), fetched once per version."""
    where = cache_dir(version)
    source = where / f"redis-{version}"
    if (source / "tests" / "conftest.py").is_file():
        return source
    where.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*pip, "-d", str(where), f"redis=={version}"], check=True)
    [sdist] = where.glob(f"redis-{version}.tar.gz")
    with tarfile.open(sdist) as archive:
        wanted = [
            member
            for member in archive.getmembers()
            if (member.isfile() or member.isdir())
            and ".." not in member.name.split("/")
            and (
                member.name.startswith(f"redis-{version}/tests/")
                or member.name == f"redis-{version}/pyproject.toml"
            )
        ]
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            archive.extractall(where, members=wanted, filter="data")
        else:  # checked above: plain files and folders under redis-<version>/ only
            archive.extractall(where, members=wanted)
    return source


def deselected() -> list[str]:
    ids = []
    for line in (HERE / "deselected.txt").read_text().splitlines():
        node = line.split("#", 1)[0].strip()
        if node:
            ids.append(node)
    return ids


def plugins(version: str) -> Path:
    """pytest-asyncio and pytest-timeout in a directory of their own, on this run's path
    only (pytest finds them by their entry points there): installed in the project's
    environment, they would load in our own suite too."""
    where = cache_dir(version) / "plugins"
    if not all(any(where.glob(f"{module}*")) for module in PLUGINS):
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade"]
        subprocess.run([*pip, "--target", str(where), *PLUGINS.values()], check=True)
    return where


def main(argv: list[str]) -> int:
    version = importlib.metadata.version("redis")
    source = fetch(version)
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(plugins(version)), str(ROOT)])
    # redis-py's tests use DEBUG (ERROR LOADING, SLEEP): allowed on this throwaway server.
    with RedisServer("--enable-debug-command", "yes") as server:
        command = [
            sys.executable, "-m", "pytest", "-p", "redis_pool_substitute",
            "-p", "no:cacheprovider", "-p", "no:django", "-q", "-o", "addopts=",
            f"--redis-url=redis://127.0.0.1:{server.port}/0",
            *(f"--deselect={node}" for node in deselected()),
            *FILES, *argv,
        ]  # fmt: skip
        print(f"[redis-py suite] redis {version}, tests from {source}", flush=True)
        return subprocess.run(command, cwd=source, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
