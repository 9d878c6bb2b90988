"""The collector API's TLS settings: both files or none; a client CA only with them."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loanwatch.routing.errors import ConfigError
from loanwatch.routing.tls import server_context

pytestmark = pytest.mark.unit


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    made = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    pem.write_bytes(made.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, key_file


def test_no_files_is_plain_http() -> None:
    assert server_context(None, None) is None


def test_cert_and_key_serve_tls_without_asking_a_client_certificate(
    cert: tuple[Path, Path],
) -> None:
    context = server_context(*cert)
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_client_ca_requires_client_certificates(cert: tuple[Path, Path]) -> None:
    context = server_context(*cert, cert[0])
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("which", ["cert", "key"])
def test_one_file_without_the_other_is_refused(cert: tuple[Path, Path], which: str) -> None:
    pem, key = cert
    with pytest.raises(ConfigError, match="go together"):
        server_context(pem if which == "cert" else None, key if which == "key" else None)


def test_a_client_ca_without_tls_is_refused(cert: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="CLIENT_CA"):
        server_context(None, None, cert[0])


def test_an_unreadable_key_is_a_config_error(cert: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="collector API TLS"):
        server_context(cert[0], bad)
