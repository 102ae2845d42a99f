"""Counters and snapshots of what the pools do, and leak reports: no network, no locks."""
