"""Minimal settings for the micro-benchmarks: one alias at BENCH_REDIS_URL."""

from __future__ import annotations

import os

SECRET_KEY = "bench"
INSTALLED_APPS = ["redis_pool"]
REDIS_POOL = {"url": os.environ["BENCH_REDIS_URL"]}
