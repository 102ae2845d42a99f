#!/usr/bin/env python
"""Django's command-line utility for the django-redis-pool test project.

Run it from anywhere, e.g. ``python testproject/manage.py check`` from the repo root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent


def main() -> None:
    # HERE goes first so `testproject.settings` and `demoapp` resolve to this directory;
    # REPO_ROOT second so `redis_pool` is imported from this checkout even when the
    # package isn't pip-installed (or a different version is).
    for path in (str(REPO_ROOT), str(HERE)):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
