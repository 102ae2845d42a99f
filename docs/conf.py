"""Sphinx configuration: MyST markdown pages, the furo theme, warnings are errors in CI."""

from __future__ import annotations

project = "django-redis-pool"
author = "django-redis-pool developers"
copyright = "django-redis-pool developers"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# [text](page.md#some-heading) links, checked at build time (-W fails on a broken one).
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "furo"
html_title = "django-redis-pool"
pygments_style = "sphinx"
