"""A tiny ASGI project for the async tests: its URLs serve async views over ``request.aredis``.

``tests.asgi_app.urls`` is also used in-process (``override_settings(ROOT_URLCONF=...)``);
``tests.asgi_app.settings`` is what ``tests/test_asgi_server.py`` runs under uvicorn.
"""
