"""Download and unpack the sdist of an installed package's exact version, once."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "django-redis-pool" / "suites"
    path = Path(os.environ.get("REDIS_POOL_SUITES_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sdist_tree(distribution: str, archive_prefix: str) -> Path:
    """The unpacked sdist of the installed ``distribution`` (``Django``, ``django-redis``)."""
    installed = version(distribution)
    root = cache_dir()
    tree = root / f"{archive_prefix}-{installed}"
    if (tree / "tests").is_dir():
        return tree
    found = sorted(root.glob(f"{archive_prefix}-{installed}.tar.gz"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
             ":all:", f"{distribution}=={installed}", "-d", str(root)],
            check=True,
        )  # fmt: skip
        found = sorted(root.glob(f"{archive_prefix}-{installed}.tar.gz"))
    if not found:
        raise RuntimeError(f"pip download gave no {archive_prefix}-{installed}.tar.gz in {root}")
    with tarfile.open(found[0]) as archive:
        members = [m for m in archive.getmembers() if "/tests/" in m.name or m.isdir()]
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+, 3.12
            archive.extractall(root, members=members, filter="data")
        else:  # an older patch release: check the names ourselves
            for member in members:
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise RuntimeError(f"unsafe path in {found[0].name}: {member.name}")
            archive.extractall(root, members=members)
    return tree
