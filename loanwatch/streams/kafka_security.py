"""How every Kafka client of loanwatch connects: declared once, typed, validated.

Env prefix ``LOANWATCH_KAFKA_`` (``LOANWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL``,
``LOANWATCH_KAFKA_SASL_MECHANISM=SCRAM-SHA-512``, ``LOANWATCH_KAFKA_SASL_USERNAME``,
``LOANWATCH_KAFKA_SASL_PASSWORD``, ``LOANWATCH_KAFKA_SSL_CA_FILE``). :meth:`client_options`
gives the keyword arguments of aiokafka's producer, consumer and admin client alike and
:meth:`faust_credentials` the worker's Faust ``broker_credentials``, so the worker (its Faust
clients and the audit trail's reader), the router (consumer, producer, admin), ``loanwatch produce``
and ``loanwatch simulate --live`` cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSecurity(BaseSettings):
    """TLS and SASL of the Kafka connections (default: plaintext, the local stack)."""

    model_config = SettingsConfigDict(env_prefix="LOANWATCH_KAFKA_", extra="ignore", frozen=True)

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="SASL_SSL in production; PLAINTEXT for the local stack"
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism (with SASL_*)"
    )
    sasl_username: str = Field(default="", description="SASL user (required with SASL_*)")
    sasl_password: SecretStr = Field(
        default=SecretStr(""), description="SASL password (required with SASL_*)"
    )
    ssl_ca_file: Path | None = Field(
        default=None, description="CA bundle of the brokers' certificates (default: system CAs)"
    )
    ssl_check_hostname: bool = Field(
        default=True, description="verify the broker's host name against its certificate"
    )

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_username and self.sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"LOANWATCH_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "LOANWATCH_KAFKA_SASL_USERNAME and LOANWATCH_KAFKA_SASL_PASSWORD"
            )
        if self.security_protocol == "SASL_PLAINTEXT" and self.sasl_mechanism == "PLAIN":
            raise ValueError(
                "LOANWATCH_KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT sends the password in "
                "clear: use SASL_SSL or a SCRAM mechanism"
            )
        if self.ssl_ca_file is not None and not self.ssl_ca_file.is_file():
            raise ValueError(f"LOANWATCH_KAFKA_SSL_CA_FILE={self.ssl_ca_file}: no such file")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            from aiokafka.helpers import create_ssl_context

            context = create_ssl_context(cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None)
            context.check_hostname = self.ssl_check_hostname
            options["ssl_context"] = context
        if self.security_protocol.startswith("SASL_"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
        return options

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` for these settings (None: plaintext)."""
        if self.security_protocol == "PLAINTEXT":
            return None
        import faust
        from faust.types.auth import SASLMechanism

        context = self.client_options().get("ssl_context")
        if self.security_protocol == "SSL":
            return faust.SSLCredentials(context)
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=SASLMechanism(self.sasl_mechanism),
        )
