"""A django-debug-toolbar panel: the Redis commands of the request, by alias, and the pools.

Add ``"redis_pool.contrib.debug_toolbar.RedisPanel"`` to ``DEBUG_TOOLBAR_PANELS``. The panel
records only while the toolbar is enabled for a request (``recording.py``); it needs no
template settings of its own (it renders with a private template engine).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

try:
    from debug_toolbar.panels import Panel
except ImportError as exc:
    raise ImportError(
        "redis_pool.contrib.debug_toolbar needs django-debug-toolbar: "
        "pip install 'django-redis-pool[debug-toolbar]'"
    ) from exc

from django.template import Context, Engine
from django.utils.safestring import SafeString

from redis_pool.contrib.debug_toolbar import recording

__all__ = ["RedisPanel"]

TEMPLATE = "redis_pool/debug_toolbar.html"


@cache
def _engine() -> Engine:
    # Our own engine: the panel renders whatever the project's TEMPLATES say, with no
    # INSTALLED_APPS entry for this subpackage. Autoescaping is on: arguments are user data.
    return Engine(dirs=[str(Path(__file__).parent / "templates")], autoescape=True)


class RedisPanel(Panel):
    """Every Redis command of the request: alias, command, key, arguments, time, pools."""

    is_async = True
    title = "Redis"
    nav_title = "Redis"
    template = TEMPLATE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorder: recording.Recorder | None = None
        self._token: Any = None

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.get_stats()  # type: ignore[no-untyped-call]
        return stats

    @property
    def nav_subtitle(self) -> str:
        stats = self._stats()
        count, ms = stats.get("total_calls", 0), stats.get("total_time_ms", 0)
        return f"{count} command{'' if count == 1 else 's'} in {ms:.2f} ms"

    @property
    def content(self) -> SafeString:
        return SafeString(_engine().get_template(self.template).render(Context(self._stats())))

    def enable_instrumentation(self) -> None:
        if self.recorder is not None:  # idempotent, as the toolbar asks
            return
        self.recorder = recording.Recorder()
        recording.acquire()
        self._token = recording.current.set(self.recorder)

    def disable_instrumentation(self) -> None:
        if self._token is None:
            return
        try:
            recording.current.reset(self._token)
        except ValueError:  # called from another context than enable: just stop recording
            recording.current.set(None)
        self._token = None
        recording.release()

    def generate_stats(self, request: Any, response: Any) -> None:
        if self.recorder is not None:
            self.record_stats(self.recorder.summary())  # type: ignore[no-untyped-call]

    def generate_server_timing(self, request: Any, response: Any) -> None:
        stats = self._stats()
        self.record_server_timing(  # type: ignore[no-untyped-call]
            "total_time",
            f"Redis {stats.get('total_calls', 0)} commands",
            stats.get("total_time_ms", 0),
        )
