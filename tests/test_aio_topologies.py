"""Sentinel, Cluster, TLS and ACL aliases through ``aget_redis()`` / ``aget_replica()`` /
``request.aredis``: one client per event loop, closed with the loop (sentinel connections
included), against real servers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest
import redis.asyncio
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, override_settings
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError

from redis_pool import aget_redis, aio
from redis_pool.aio import aget_replica
from redis_pool.middleware import RedisPoolMiddleware
from redis_pool.topologies.cluster import AsyncClusterEntry
from redis_pool.topologies.sentinel import AsyncSentinelEntry
from tests.helpers import wait_for
from tests.redis_server import RedisServer
from tests.settings import REDIS_URL
from tests.topology_servers import (
    ACL_PASSWORD,
    ACL_USER,
    SERVICE,
    ACLServer,
    ClusterSetup,
    SentinelSetup,
    TLSServer,
    text,
)

pytestmark = pytest.mark.slow


def named(server: RedisServer, alias: str) -> list[dict[str, str]]:
    return server.clients_named(f"redis_pool:tests:{alias}:")


def entry_of(alias: str) -> object:
    return getattr(asyncio.get_running_loop(), aio._ATTR).entries[alias]


# -- Sentinel ---------------------------------------------------------------------------


@pytest.fixture
def ha(sentinel_setup: SentinelSetup) -> Iterator[SentinelSetup]:
    options = {"sentinels": sentinel_setup.addresses, "service_name": SERVICE}
    with override_settings(
        REDIS_POOL={"default": {"url": REDIS_URL}, "ha": options},
        REDIS_POOL_MIDDLEWARE_ALIAS="ha",
    ):
        yield sentinel_setup


def test_sentinel_alias_per_loop_and_closed_with_it(ha: SentinelSetup) -> None:
    master = ha.current_master()
    replica = next(s for s in ha.servers() if s is not master)

    async def main(n: int) -> None:
        client = aget_redis("ha")
        assert isinstance(entry_of("ha"), AsyncSentinelEntry)
        assert aget_redis("ha") is client
        await client.set("ak", str(n))
        wait_for(
            lambda: text(replica.command("GET", "ak")).endswith(f"{n}\r\n"),
            5,
            "replication",
            retry_on=(OSError,),
        )
        assert await aget_replica("ha").get("ak") == str(n).encode()
        assert aget_replica("default") is aget_redis("default")
        assert [s.address.endswith(" replicas") for s in aio.async_pool_stats("ha")] == [
            False,
            True,
        ]
        assert len(named(master, "ha")) == len(named(replica, "ha")) == 1
        assert sum(len(named(s, "ha")) for s in ha.sentinels) >= 1  # asked for the master

    for n in range(3):
        asyncio.run(main(n))
        # Closed with the loop: the master's, the replica's and the sentinels' connections.
        assert named(master, "ha") == named(replica, "ha") == []
        assert [named(s, "ha") for s in ha.sentinels] == [[], []]
    assert aio.async_pool_stats("ha") == []


def test_sentinel_alias_through_request_aredis(ha: SentinelSetup) -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(await request.aredis.incr("mw")))  # type: ignore[attr-defined]

    async def main() -> bytes:
        response = await RedisPoolMiddleware(view)(AsyncRequestFactory().get("/"))
        return bytes(response.content)

    assert asyncio.run(main()) == b"1"
    assert text(ha.current_master().command("GET", "mw")).endswith("1\r\n")


# -- Cluster ----------------------------------------------------------------------------


@pytest.fixture
def c(cluster: ClusterSetup) -> Iterator[ClusterSetup]:
    for node in cluster.nodes:
        node.command("FLUSHALL")
    url = f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}"
    with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "c": {"url": url}}):
        yield cluster


def test_cluster_alias_per_loop_and_closed_with_it(c: ClusterSetup) -> None:
    keys = [f"k{i}" for i in range(64)]  # spread over the slots of all three masters

    async def main() -> None:
        # Awaiting it first runs RedisCluster.initialize(): redis-py 8.1's async cluster
        # client races when many tasks send its very first commands at once
        # (AttributeError: 'NoneType' object has no attribute 'writelines'), with or
        # without redis_pool (README, Async views).
        client = await aget_redis("c")
        assert client is aget_redis("c")
        assert isinstance(entry_of("c"), AsyncClusterEntry)
        assert aget_replica("c") is client
        await asyncio.gather(*(client.set(key, key) for key in keys))
        assert await asyncio.gather(*(client.get(key) for key in keys)) == [
            key.encode() for key in keys
        ]
        stats = aio.async_pool_stats("c")
        assert sorted(s.address for s in stats) == sorted(
            f"redis://127.0.0.1:{node.port}" for node in c.nodes
        )
        assert all(s.created >= 1 for s in stats)
        assert all(len(named(node, "c")) >= 1 for node in c.nodes)

    for _ in range(2):
        asyncio.run(main())
        assert [named(node, "c") for node in c.nodes] == [[], [], []]
    assert sum(int(text(n.command("DBSIZE")).strip(":\r\n")) for n in c.nodes) == len(keys)


# -- TLS and ACL ------------------------------------------------------------------------


def test_tls_with_ca_and_client_certificate(tls: TLSServer) -> None:
    options = {
        "url": tls.tls_url,
        "ssl_ca_certs": str(tls.certs.ca),
        "ssl_certfile": str(tls.certs.client_cert),
        "ssl_keyfile": str(tls.certs.client_key),
    }

    async def main() -> None:
        client = aget_redis("s")
        assert issubclass(client.connection_pool.connection_class, redis.asyncio.SSLConnection)
        await client.set("k", "tls")
        (connection,) = client.connection_pool._available_connections
        # redis-py's defaults, kept: the certificate and the host name are verified.
        assert (connection.cert_reqs, connection.check_hostname) == (ssl.CERT_REQUIRED, True)
        assert await client.get("k") == b"tls"
        assert len(named(tls, "s")) == 1  # seen on the server's plain port

    with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "s": options}):
        asyncio.run(main())
    assert named(tls, "s") == []


def test_tls_refuses_a_server_signed_by_another_ca(tls: TLSServer) -> None:
    options = {
        "url": tls.tls_url,
        "ssl_ca_certs": str(tls.certs.other_ca),
        "ssl_certfile": str(tls.certs.client_cert),
        "ssl_keyfile": str(tls.certs.client_key),
    }

    async def main() -> None:
        with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await aget_redis("s").ping()

    with override_settings(REDIS_POOL={"default": {"url": REDIS_URL}, "s": options}):
        asyncio.run(main())


def test_acl_user_limited_rights_and_wrong_password(acl_server: ACLServer) -> None:
    server = acl_server
    good = f"redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{server.port}/0"
    bad = f"redis://{ACL_USER}:wrong-{ACL_PASSWORD}@127.0.0.1:{server.port}/0"

    async def main() -> None:
        client = aget_redis("a")
        await client.set("app:k", "v")
        assert await client.get("app:k") == b"v"
        with pytest.raises(NoPermissionError):
            await client.set("other:k", "v")
        with pytest.raises(AuthenticationError) as excinfo:
            await aget_redis("b").ping()
        message = str(excinfo.value)
        assert message.startswith("Redis alias 'b' could not authenticate to ")
        assert ACL_PASSWORD not in message
        assert ACL_USER not in message

    aliases = {"default": {"url": REDIS_URL}, "a": {"url": good}, "b": {"url": bad}}
    with override_settings(REDIS_POOL=aliases):
        asyncio.run(main())
    assert named(server, "a") == []
