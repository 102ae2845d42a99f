"""redis-py pools that count what they do, and name their connections per process.

Subclasses, not wrappers: redis-py's own locking, fork check and health checks stay in
charge (every private of redis-py relied on is listed in ``_redis_py.py``). The counting
happens inside redis-py's own critical sections, so it costs no lock of ours: the plain
pool's in-use set and the blocking pool's fair queue count (``counting.py``); the asyncio
pools count on their event loop (``asyncio.py``). Connects, closes and errors are counted
by the connection class (``connections.py``), off the checkout path. One snapshot
function (``base.pool_stats``) turns any pool's counters into ``PoolStats``.
"""
