"""Test suites nobody here wrote, run against ``redis_pool.cache.RedisCache``.

Django's own cache and cache-session tests and django-redis's backend tests come from the
sdists of the installed versions, downloaded at run time into a cache directory (never
committed). Entry point: ``scripts/cache_suites``; results and exclusions: docs/cache.md.
"""
