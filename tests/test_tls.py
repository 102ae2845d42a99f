"""``rediss://`` against a real ``redis-server --tls-port`` with certificates made per run.

The server requires a client certificate (``--tls-auth-clients yes``). Certificate and
host name verification are redis-py's defaults (``ssl_cert_reqs='required'``,
``ssl_check_hostname=True``) and the app keeps them: turning them off takes a setting.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from redis_pool import get_redis, pool_stats
from redis_pool.registry import get_pool
from tests.redis_server import HAS_TLS, NO_TLS_REASON
from tests.settings import REDIS_URL
from tests.topology_servers import TLSServer

pytestmark = pytest.mark.skipif(not HAS_TLS, reason=NO_TLS_REASON)

PREFIX = "redis_pool:tests:s:"  # the default client name of alias "s"


def certificates(server: TLSServer) -> dict[str, str]:
    return {
        "ssl_ca_certs": str(server.certs.ca),
        "ssl_certfile": str(server.certs.client_cert),
        "ssl_keyfile": str(server.certs.client_key),
    }


def alias_s(**options: Any) -> Any:
    return override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "s": options})


def test_rediss_with_ca_and_client_certificate(tls: TLSServer) -> None:
    with alias_s(url=tls.tls_url, **certificates(tls)):
        client = get_redis("s")
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert issubclass(get_pool("s").connection_class, SSLConnection)
        assert pool_stats("s").address == f"rediss://127.0.0.1:{tls.tls_port}/0"
        # The server (asked on its plain port) sees our named connection.
        assert len(tls.clients_named(PREFIX)) == 1


def test_ssl_key_with_host_and_port_works_too(tls: TLSServer) -> None:
    with alias_s(host="127.0.0.1", port=tls.tls_port, ssl=True, **certificates(tls)):
        assert get_redis("s").ping() is True


def test_verification_is_on_by_default(tls: TLSServer) -> None:
    # No CA given: the server's certificate is checked against the system's CAs and fails.
    options = certificates(tls)
    del options["ssl_ca_certs"]
    with alias_s(url=tls.tls_url, **options):
        with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            get_redis("s").ping()
        assert pool_stats("s").errors >= 1


def test_a_wrong_ca_fails_clearly(tls: TLSServer) -> None:
    options = {**certificates(tls), "ssl_ca_certs": str(tls.certs.other_ca)}
    with alias_s(url=tls.tls_url, **options), pytest.raises(RedisConnectionError) as caught:
        get_redis("s").ping()
    message = str(caught.value)
    assert f"connecting to 127.0.0.1:{tls.tls_port}" in message
    assert "certificate verify failed" in message


def test_the_host_name_is_checked(tls: TLSServer) -> None:
    # The certificate is for 127.0.0.1 only.
    url = f"rediss://localhost:{tls.tls_port}/0"
    with (
        alias_s(url=url, **certificates(tls)),
        pytest.raises(RedisConnectionError, match="Hostname mismatch"),
    ):
        get_redis("s").ping()


def test_turning_verification_off_takes_a_setting(tls: TLSServer) -> None:
    options = certificates(tls)
    del options["ssl_ca_certs"]
    with alias_s(url=tls.tls_url, ssl_cert_reqs="none", **options):
        assert get_redis("s").ping() is True


def test_the_server_requires_our_client_certificate(tls: TLSServer) -> None:
    # With TLS 1.3 the server refuses after the handshake: redis-py sees either its alert
    # or, when it writes first, just the socket closing or reset (README, TLS).
    refused = r"CERTIFICATE_REQUIRED|EOF occurred|Connection reset by peer"
    with (
        alias_s(url=tls.tls_url, ssl_ca_certs=str(tls.certs.ca)),
        pytest.raises(RedisConnectionError, match=refused),
    ):
        get_redis("s").ping()
    assert tls.clients_named(PREFIX) == []
