"""Kafka security of the routing service's clients: one settings class, validated at start."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from loanwatch.routing.errors import ConfigError
from loanwatch.routing.service import kafka_options
from loanwatch.streams.kafka_security import KafkaSecurity


def test_plaintext_by_default() -> None:
    assert KafkaSecurity().client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_with_scram_sha_512(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LOANWATCH_KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("LOANWATCH_KAFKA_SASL_PASSWORD", "pw-from-the-vault")
    options = kafka_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "router",
        "pw-from-the-vault",
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert "pw-from-the-vault" not in repr(KafkaSecurity())  # SecretStr


def test_incomplete_or_unsafe_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOANWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="LOANWATCH_KAFKA_SASL_USERNAME"):
        kafka_options()
    monkeypatch.setenv("LOANWATCH_KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("LOANWATCH_KAFKA_SASL_PASSWORD", "p")
    monkeypatch.setenv("LOANWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LOANWATCH_KAFKA_SASL_MECHANISM", "PLAIN")
    with pytest.raises(ConfigError, match="in clear"):
        kafka_options()
    monkeypatch.setenv("LOANWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("LOANWATCH_KAFKA_SSL_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="no such file"):
        kafka_options()
    monkeypatch.setenv("LOANWATCH_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValidationError):
        KafkaSecurity()
