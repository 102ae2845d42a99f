"""No check message, hint, object or repr shows a secret, for every check ID (issue 9 item 7).

Each case builds a bad REDIS_POOL that triggers one check ID with a password (alone or
inside a URL) somewhere in it; the secret must not appear in anything the checks report,
nor in what ``get_redis()`` raises.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from redis_pool import AliasNotFound, get_redis
from redis_pool.checks import check_settings

SECRET = "Pw-S3cr3t-xyz"
URL = f"redis://alice:{SECRET}@127.0.0.1:6379/0"

CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "E001-url-string": (URL, {}),
    "E001-list": ([URL, {"password": SECRET}], {}),
    "E002-url-string": ({"default": {}, "cache": URL}, {}),
    "E002-list": ({"default": {}, "cache": [URL]}, {}),
    "E003": ({"default": {"url": URL, "pasword": SECRET}}, {}),
    "E004-list-of-urls": ({"default": {"host": [URL]}}, {}),
    "E004-set-of-urls": ({"default": {"host": {URL}}}, {}),
    "E004-deep": ({"default": {"host": [[[[[[[URL]]]]]]]}}, {}),
    "E004-userinfo-no-scheme": ({"default": {"port": f"alice:{SECRET}@h"}}, {}),
    "E004-password-type": ({"default": {"password": [SECRET]}}, {}),
    "E004-url-query": ({"default": {"url": URL + "?socket_timeout=-1"}}, {}),
    "E005": ({"default": {"url": f"http://alice:{SECRET}@h/0"}}, {}),
    "E006": ({"default": {"url": URL, "max_connections": 0}}, {}),
    "E007": ({"default": {"url": URL, "password": SECRET}}, {}),
    "E008": ({"default": {"url": URL, "ssl_ca_certs": "/ca"}}, {}),
    "E009": ({URL: {"password": SECRET}}, {}),
    "E010": ({"default": {"url": URL}}, {"REDIS_POOL_MIDDLEWARE_ALIAS": "sessions"}),
    "E011": ({"default": {"url": URL, "maint_notifications_config": {"enabled": True}}}, {}),
    "E030": ({"default": {"sentinels": [URL], "service_name": "m", "password": SECRET}}, {}),
    "E031": ({"default": {"sentinels": [("h", 1)], "password": SECRET, "db": URL}}, {}),
    "E032": ({"default": {"sentinels": [("h", 1)], "service_name": "m",
                          "sentinel_kwargs": {"pasword": SECRET, "password": [SECRET]}}}, {}),
    "E033": ({"default": {"sentinels": [("h", 1)], "service_name": "m", "url": URL}}, {}),
    "W001": ({"default": {"url": URL, "max_connections": 20_000}}, {}),
    "W002": ({"default": {"url": URL, "socket_timeout": None}}, {}),
    "W003": ({"cache": {"url": URL}}, {"REDIS_POOL_MIDDLEWARE_ALIAS": "cache"}),
    "W004": ({"default": {"url": URL}}, {"DEBUG": True}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_check_output_shows_a_secret(case: str) -> None:
    value, extra = CASES[case]
    with override_settings(REDIS_POOL=value, **extra):
        messages = check_settings()
        ids = {m.id for m in messages}
        assert f"redis_pool.{case.split('-')[0]}" in ids, [m.msg for m in messages]
        for message in messages:
            for text in (message.msg, message.hint or "", repr(message.obj), repr(message),
                         str(message)):  # fmt: skip
                assert SECRET not in text, text
        raised: list[str] = []
        for alias in ("default", "cache"):
            try:
                get_redis(alias)
            except (ImproperlyConfigured, AliasNotFound) as exc:
                raised += [str(exc), repr(exc)]
        for text in raised:
            assert SECRET not in text, text


def test_every_check_id_is_covered() -> None:
    # A new check ID must get a case here: the checks page of the docs lists every ID.
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "docs" / "checks.md").read_text()
    documented = set(re.findall(r"`redis_pool\.([EW]\d{3})`", readme))
    covered = {case.split("-")[0] for case in CASES}
    assert documented <= covered, sorted(documented - covered)


@pytest.mark.parametrize(
    ("value", "broken"),
    [
        (URL, ["default", "cache"]),
        ([URL], ["default", "cache"]),
        ({"default": {}, "cache": URL}, ["cache"]),
    ],
)
def test_get_redis_raises_without_the_secret(value: Any, broken: list[str]) -> None:
    with override_settings(REDIS_POOL=value):
        for alias in broken:
            with pytest.raises(ImproperlyConfigured) as caught:
                get_redis(alias)
            assert SECRET not in str(caught.value)


def test_django_error_page_masks_the_password_key_but_not_a_url() -> None:
    # Why W004 exists (docs/settings-secrets.md): Django's own filter for the DEBUG page.
    from django.views.debug import SafeExceptionReporterFilter

    value = {"default": {"url": URL}, "other": {"url": "redis://h/0", "password": SECRET}}
    with override_settings(REDIS_POOL=value):
        shown = SafeExceptionReporterFilter().get_safe_settings()["REDIS_POOL"]
    assert shown["default"]["url"] == URL  # Django shows it: hence the warning
    assert SECRET not in repr(shown["other"])
