"""Integrations with other tools, each behind an optional extra: prometheus, opentelemetry."""
