"""The settings layer: ``REDIS_POOL`` read live and parsed into one ``PoolConfig`` per alias.

Pure: no network, no pools, never raises on bad input. Modules, bottom up:
``keys`` (which keys exist, the one validator per key), ``secrets`` (all masking),
``defaults`` (what we set where the user sets nothing), ``topologies`` (Sentinel and
Cluster keys), ``alias`` (the parse pipeline and ``PoolConfig``), ``settings`` (the one
live settings object).
"""
