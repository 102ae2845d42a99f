"""redis-py's own pool test suite, run against redis_pool's pool classes (issue 9).

``python -m tests.redis_py_suite`` fetches the installed redis-py version's sdist from PyPI
(cached under ``.venv``, never committed), starts a redis-server on a free loopback port,
and runs redis-py's pool and connection tests with ``redis.ConnectionPool`` and friends
rebound to ours (``redis_pool_substitute.py``). ``deselected.txt`` lists the tests left
out, each with its reason; docs/redis-py-compat.md explains every difference.
"""
