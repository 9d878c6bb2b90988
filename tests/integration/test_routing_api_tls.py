"""The collector API over TLS: ``routes serve`` (a subprocess) with a certificate signed by a CA
made here with ``cryptography`` and a client CA (mutual TLS). A client trusting the CA and
holding a client certificate gets answers; plain HTTP on that port gets no HTTP answer at all;
a client without a certificate, or one not trusting the CA, is refused in the handshake."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from loanwatch.routing.auth import token_digest

from .routing_support import SERVE_SECRETS, ServeProcess, wait_until
from .test_routing_router import free_port

TOKEN = "tls-test-token"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    common: str,
    folder: Path,
    stem: str,
    *,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A P-256 key and its certificate (self-signed CA when ``ca`` is None), as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca[0].subject if ca else _name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    if ca is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        assert usage is not None
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False,
            )
    cert = builder.sign(ca[1] if ca else key, hashes.SHA256())
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, folder / f"{stem}.key")
    return cert, key


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """ca.pem, server.pem/.key (127.0.0.1), client.pem/.key; other-ca.pem signs nothing here."""
    folder = tmp_path / "pki"
    folder.mkdir()
    ca = _issue(None, "loanwatch test CA", folder, "ca")
    _issue(ca, "127.0.0.1", folder, "server", usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(ca, "collector c-li", folder, "client", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    _issue(None, "some other CA", folder, "other-ca")
    return folder


def _client_context(pki: Path, *, cert: bool = True, ca: str = "ca") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / f"{ca}.pem"))
    if cert:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    return context


def _plain_http_answer(port: int) -> bytes:
    """What a plain HTTP/1.1 request on the port gets back (b'' when the server hangs up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_the_api_over_tls_answers_trusted_clients_only(
    kafka_bootstrap: str,
    redis_url: str,
    redis_prefix: str,
    pki: Path,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        "LOANWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOANWATCH_ALERTS_TOPIC": unique_name("alerts"),
        "LOANWATCH_STATUS_TOPIC": "",
        "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": unique_name("dead"),
        "LOANWATCH_ARCHIVE_TOPIC": unique_name("archive"),
        "LOANWATCH_CONSUMER_GROUP": unique_name("g"),
        "LOANWATCH_REDIS_URL": redis_url,
        "LOANWATCH_REDIS_PREFIX": redis_prefix,
        "LOANWATCH_API_PORT": str(port),
        "LOANWATCH_API_CLIENTS": json.dumps(
            {
                "c-li": {
                    "token_sha256": token_digest(TOKEN),
                    "scope": "collector",
                    "collector": "c-li",
                }
            }
        ),
        "LOANWATCH_API_TLS_CERT_FILE": str(pki / "server.pem"),
        "LOANWATCH_API_TLS_KEY_FILE": str(pki / "server.key"),
        "LOANWATCH_API_TLS_CLIENT_CA_FILE": str(pki / "ca.pem"),
        **SERVE_SECRETS,
    }
    proc = ServeProcess(env, tmp_path / "serve.log")
    base = f"https://127.0.0.1:{port}"
    trusted = aiohttp.TCPConnector(ssl=_client_context(pki))
    proc.start()
    try:
        async with aiohttp.ClientSession(
            connector=trusted, timeout=aiohttp.ClientTimeout(total=10)
        ) as session:

            async def healthy() -> bool:
                assert proc.alive(), proc.tail()
                try:
                    async with session.get(f"{base}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientConnectionError:
                    return False  # not listening yet

            await wait_until(healthy, "the API answers over TLS")
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with session.get(f"{base}/queue", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert await resp.json() == {"items": []}
            async with session.get(f"{base}/queue") as resp:
                assert resp.status == 401  # TLS is not a token: the bearer is still required

        answer = _plain_http_answer(port)
        assert not answer.startswith(b"HTTP/"), answer[:200]  # plain HTTP: no HTTP answer

        for context, why in (
            (_client_context(pki, cert=False), "no client certificate"),
            (_client_context(pki, ca="other-ca"), "server not trusted"),
        ):
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=10),
            ) as session:
                with pytest.raises(aiohttp.ClientError):
                    async with session.get(f"{base}/healthz") as resp:
                        pytest.fail(f"{why}: answered {resp.status}")
        assert proc.alive(), proc.tail()
    finally:
        code = proc.stop()
    assert code == 0, proc.tail()
