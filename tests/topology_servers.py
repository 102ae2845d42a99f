"""Real Sentinel, Cluster, TLS and ACL set-ups on loopback, for the topology tests.

Each set-up starts its processes on free ports in its own temporary directories and
``cleanup()`` stops all of them, also when start-up failed half way. Like
``tests/redis_server.py``, the harness talks to the servers with raw sockets (and
``redis-cli`` for ``--cluster create``), never with redis-py.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import wait_for
from tests.redis_server import (
    HAS_TLS,
    LOOPBACK,
    NO_TLS_REASON,
    RedisServer,
    free_port,
    redis_cli_binary,
    redis_server_binary,
)

SERVICE = "mymaster"


def text(reply: bytes) -> str:
    return reply.decode(errors="replace")


def info_field(server: RedisServer, section: str, name: str) -> str | None:
    for line in text(server.command("INFO", section)).splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return None


# -- Sentinel ---------------------------------------------------------------------------


class SentinelServer(RedisServer):
    """``redis-server <conf> --sentinel`` monitoring one master as ``SERVICE``."""

    def __init__(self, master_port: int, *, down_after_ms: int = 1000):
        super().__init__()
        self.master_port = master_port
        self.down_after_ms = down_after_ms

    def args(self) -> list[str]:
        # Sentinel rewrites its config file, so it needs a file of its own, not arguments.
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\n"
            f"bind {LOOPBACK}\n"
            f"dir {self.dir}\n"
            f"logfile {self.dir / 'redis.log'}\n"
            "loglevel notice\n"
            f"sentinel monitor {SERVICE} {LOOPBACK} {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return [redis_server_binary(), str(conf), "--sentinel"]

    def master_address(self) -> tuple[str, int]:
        reply = text(self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE))
        parts = [p for p in reply.split("\r\n") if p and p[0] not in "*$"]
        return parts[0], int(parts[1])

    def sees_replica(self, port: int) -> bool:
        """This sentinel lists a healthy replica on ``port`` (what FAILOVER needs)."""
        reply = text(self.command("SENTINEL", "REPLICAS", SERVICE))
        blocks = reply.split("name\r\n")[1:]
        for block in blocks:
            if f"\r\n{port}\r\n" in block and "\r\nflags\r\n" in block:
                flags = block.split("\r\nflags\r\n", 1)[1].split("\r\n")[1]
                if flags == "slave" and "master-link-status\r\n$2\r\nok" in block:
                    return True
        return False

    def known_sentinels(self) -> int:
        reply = text(self.command("SENTINEL", "SENTINELS", SERVICE))
        return int(reply.split("\r\n", 1)[0][1:])


class SentinelSetup:
    """A master, a replica and ``n`` sentinels monitoring them as ``SERVICE``."""

    def __init__(self, sentinels: int = 2):
        # Either server may be the master after a failover; no delay before a full sync
        # (Redis waits 5 s by default, hoping to serve several replicas with one transfer).
        self.data_args = ("--repl-diskless-sync-delay", "0")
        self.master = RedisServer(*self.data_args)
        self.replica: RedisServer | None = None
        self.sentinels: list[SentinelServer] = []
        self.count = sentinels

    def start(self) -> SentinelSetup:
        try:
            self.master.start()
            self.replica = RedisServer(
                *self.data_args, "--replicaof", LOOPBACK, str(self.master.port)
            ).start()
            wait_for(
                lambda: (
                    info_field(self.replica_server, "replication", "master_link_status") == "up"
                ),
                10,
                "the replica to sync",
                retry_on=(OSError,),
            )
            for _ in range(self.count):
                self.sentinels.append(SentinelServer(self.master.port).start())
            for sentinel in self.sentinels:
                wait_for(
                    lambda s=sentinel: s.sees_replica(self.replica_server.port),  # type: ignore[misc]
                    15,
                    "the sentinel to see the replica",
                    retry_on=(OSError,),
                )
                wait_for(
                    lambda s=sentinel: s.known_sentinels() == self.count - 1,  # type: ignore[misc]
                    15,
                    "the sentinels to discover each other",
                    retry_on=(OSError,),
                )
        except BaseException:
            self.cleanup()
            raise
        return self

    @property
    def replica_server(self) -> RedisServer:
        assert self.replica is not None
        return self.replica

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(LOOPBACK, s.port) for s in self.sentinels]

    def servers(self) -> list[RedisServer]:
        return [self.master, self.replica_server]

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers() if s.port == port)

    def current_master(self) -> RedisServer:
        """The data server that says it is a master (not what the sentinels say)."""
        masters = [s for s in self.servers() if info_field(s, "replication", "role") == "master"]
        assert len(masters) == 1, "expected exactly one master"
        return masters[0]

    def cleanup(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            if server is not None:
                server.cleanup()


# -- Cluster ----------------------------------------------------------------------------


class ClusterNodeServer(RedisServer):
    def __init__(self) -> None:
        # The cluster bus needs a second port; Redis 7 lets us name it (cluster-port).
        self.bus_port = free_port()
        super().__init__(
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", "2000",
        )  # fmt: skip


class ClusterSetup:
    """``masters`` cluster-enabled servers joined by ``redis-cli --cluster create``."""

    def __init__(self, masters: int = 3):
        self.nodes = [ClusterNodeServer() for _ in range(masters)]

    def start(self) -> ClusterSetup:
        try:
            for node in self.nodes:
                node.start()
            redis_cli = redis_cli_binary()
            subprocess.run(
                [
                    redis_cli, "--cluster", "create",
                    *(f"{LOOPBACK}:{node.port}" for node in self.nodes),
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=30,
            )  # fmt: skip
            for node in self.nodes:
                wait_for(
                    lambda n=node: info_ok(n),  # type: ignore[misc]
                    15,
                    "cluster_state:ok on every node",
                    retry_on=(OSError,),
                )
        except BaseException:
            self.cleanup()
            raise
        return self

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(LOOPBACK, node.port) for node in self.nodes]

    def slot_ranges(self) -> dict[int, list[tuple[int, int]]]:
        """port -> the slot ranges that node serves (from CLUSTER NODES)."""
        reply = text(self.nodes[0].command("CLUSTER", "NODES"))
        ranges: dict[int, list[tuple[int, int]]] = {}
        for line in reply.splitlines():
            fields = line.split(" ")
            if len(fields) < 8 or ":" not in fields[1]:
                continue
            port = int(fields[1].split("@", 1)[0].rsplit(":", 1)[1])
            for item in fields[8:]:
                if item and item[0].isdigit():
                    low, _, high = item.partition("-")
                    ranges.setdefault(port, []).append((int(low), int(high or low)))
        return ranges

    def node_on(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def info_ok(node: RedisServer) -> bool:
    return "cluster_state:ok" in text(node.command("CLUSTER", "INFO"))


# -- TLS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """PEM files: a CA, a server certificate for 127.0.0.1, a client certificate, and a
    second CA that signed none of them."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    **kind: Any,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        # Python 3.13 verifies with VERIFY_X509_STRICT, which requires key identifiers.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            True,
        )  # fmt: skip
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        usage = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if kind.get("server")
            else (ExtendedKeyUsageOID.CLIENT_AUTH)
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        if kind.get("server"):
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
                False,
            )
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path) -> Certificates:
    ca_key, other_key = _key(), _key()
    ca = _certificate("redis_pool test CA", ca_key, None)
    other = _certificate("some other CA", other_key, None)
    server_key, client_key = _key(), _key()
    issuer = ("redis_pool test CA", ca_key)
    server = _certificate(LOOPBACK, server_key, issuer, server=True)
    client = _certificate("redis_pool test client", client_key, issuer)
    return Certificates(
        ca=_write_cert(ca, directory / "ca.pem"),
        server_cert=_write_cert(server, directory / "server.pem"),
        server_key=_write_key(server_key, directory / "server.key"),
        client_cert=_write_cert(client, directory / "client.pem"),
        client_key=_write_key(client_key, directory / "client.key"),
        other_ca=_write_cert(other, directory / "other-ca.pem"),
    )


class TLSServer(RedisServer):
    """A redis-server answering TLS on ``tls_port`` and requiring client certificates.

    It keeps a plain port too, on loopback, for the harness's own raw-socket commands.
    """

    def __init__(self) -> None:
        if not HAS_TLS:  # every test that needs one skips, saying why
            pytest.skip(NO_TLS_REASON)
        self.tls_port = free_port()
        super().__init__()
        self.certs = make_certificates(self.dir)
        self.extra += [
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", str(self.certs.server_cert),
            "--tls-key-file", str(self.certs.server_key),
            "--tls-ca-cert-file", str(self.certs.ca),
            "--tls-auth-clients", "yes",
        ]  # fmt: skip

    @property
    def tls_url(self) -> str:
        return f"rediss://{LOOPBACK}:{self.tls_port}/0"


# -- ACL --------------------------------------------------------------------------------

ACL_USER = "limited_user"
ACL_PASSWORD = "s3cret-Pa55word"  # the tests assert this string never shows up anywhere


class ACLServer(RedisServer):
    """A redis-server with a user ``ACL_USER`` that may only read and write ``app:*`` keys.

    ``+client|setname`` is granted because redis-py names every connection it opens
    (``client_name``); without it a connection fails with NOPERM (tested too).
    """

    RULES = (
        "on", f">{ACL_PASSWORD}", "resetkeys", "~app:*", "resetchannels",
        "-@all", "+@read", "+@write", "+@connection", "-@dangerous",
        "+client|setname",
    )  # fmt: skip

    def start(self, timeout: float = 10.0) -> ACLServer:
        super().start(timeout)
        reply = self.command("ACL", "SETUSER", ACL_USER, *self.RULES)
        if not reply.startswith(b"+OK"):
            self.cleanup()
            raise RuntimeError(f"ACL SETUSER failed: {text(reply)}")
        return self

    def add_user(self, name: str, *rules: str) -> None:
        reply = self.command("ACL", "SETUSER", name, *rules)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"ACL SETUSER failed: {text(reply)}")
