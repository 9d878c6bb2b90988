"""The stack's SASL_SSL material: made once with keytool, reused, rendered into the config."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from loanwatch.stack import kafka, kafka_tls

pytestmark = pytest.mark.unit

CONFIG = Path(__file__).resolve().parents[2] / "config" / "kafka"


def _properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()  # the last one wins, as in Java
    return out


def test_material_is_made_once_and_trusted_by_a_client(tmp_path: Path) -> None:
    made = kafka_tls.ensure(tmp_path)
    again = kafka_tls.ensure(tmp_path)
    assert again == made  # idempotent: same passwords, same files
    assert (made.directory / "broker.p12").stat().st_size > 0
    assert (made.directory / "secrets.json").stat().st_mode & 0o077 == 0
    ssl.create_default_context(cafile=str(made.ca_file))  # a PEM CA a client can load
    env = made.client_env()
    assert env["LOANWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["LOANWATCH_KAFKA_SSL_CA_FILE"] == str(made.ca_file)
    assert (made.directory / "client.env").read_text().count("LOANWATCH_KAFKA_") == 5


def test_the_broker_config_gains_the_listener_and_keeps_the_rest(tmp_path: Path) -> None:
    material = kafka_tls.TlsMaterial(tmp_path / "tls", "pw-123", "loanwatch", "scram-pw")
    extra = kafka_tls.render((CONFIG / "sasl_ssl.properties").read_text(), material)
    text = kafka.render_server_properties(
        (CONFIG / "server.properties").read_text(), tmp_path / "data", extra
    )
    props = _properties(text)
    assert "@" not in extra.replace("1@127", "")  # every placeholder filled
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:9095")
    assert "PLAINTEXT://127.0.0.1:9092" in props["advertised.listeners"]
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == f"{tmp_path}/tls/broker.p12"
    assert props["listener.name.sasl_ssl.ssl.keystore.password"] == "pw-123"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_the_scram_password_is_declared_for_the_user() -> None:
    material = kafka_tls.TlsMaterial(Path("/x"), "k", "loanwatch", "s3cret")
    argv = kafka_tls.scram_command(material, "127.0.0.1:9092")
    assert argv[0] == "kafka.admin.ConfigCommand"
    assert "SCRAM-SHA-512=[iterations=8192,password=s3cret]" in argv
    assert argv[-2:] == ("--entity-name", "loanwatch")
