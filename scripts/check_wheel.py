"""Check that a built wheel holds what an installed app needs (py.typed, every subpackage).

With a flat layout the tests import from the checkout, so they would not notice a wheel
that lost a file: this does.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REQUIRED = [
    "redis_pool/__init__.py",
    "redis_pool/py.typed",
    "redis_pool/apps.py",
    "redis_pool/config/__init__.py",
    "redis_pool/config/settings.py",
    "redis_pool/exceptions.py",
    "redis_pool/checks.py",
    "redis_pool/middleware.py",
    "redis_pool/registry.py",
    "redis_pool/management/__init__.py",
    "redis_pool/management/commands/__init__.py",
    "redis_pool/management/commands/redis_poolstats.py",
]


def main(wheel: str) -> int:
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        str(p.as_posix())
        for p in Path("redis_pool").rglob("*")
        if p.suffix in (".py", ".typed", ".html") and "__pycache__" not in p.parts
    }
    missing = sorted((set(REQUIRED) | source) - names)
    stray = sorted(
        n for n in names if n.startswith(("tests/", "testproject/", "benchmarks/", "docs/"))
    )
    if missing or stray:
        print(f"{wheel}: missing {missing}, stray {stray}")
        return 1
    print(f"{wheel}: {len(names)} files, all of redis_pool/ present")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
