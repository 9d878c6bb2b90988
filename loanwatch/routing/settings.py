"""Settings of the router service, declared once, typed and validated at start-up.

Every value comes from the environment (prefix ``LOANWATCH_``) or its default here; nothing else
in ``loanwatch.routing`` reads ``os.environ``. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from loanwatch.routing.config import DEFAULT_COMPLIANCE, DEFAULT_ROUTING


class RouterSettings(BaseSettings):
    """Where the router reads, writes and sends. Env: ``LOANWATCH_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="LOANWATCH_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    alerts_topic: str = Field(default="loan.alerts", description="alerts consumed (SPEC §6)")
    status_topic: str | None = Field(
        default="loan.status",
        description="the ledger's verdicts (accepted loan_closed) resolve items; empty to disable",
    )
    router_dead_letter_topic: str = Field(
        default="loan.router-dead-letters",
        description="records the router cannot act on, with a reason (created when missing)",
    )
    record_max_bytes: int = Field(
        default=65_536, ge=256, description="largest record the router decodes; bigger: dead"
    )
    record_max_depth: int = Field(
        default=16, ge=2, le=512, description="deepest JSON nesting the router accepts"
    )
    redis_retry_initial_seconds: float = Field(
        default=0.2, gt=0, description="first retry delay while Redis is down/refusing; doubles"
    )
    redis_retry_max_seconds: float = Field(
        default=5.0, gt=0, description="cap of the Redis retry delay"
    )
    archive_topic: str = Field(
        default="loan.router-archive",
        description="resolved work items, published before Redis forgets them (created when "
        "missing; key = loan_id)",
    )
    seen_ttl_hours: float = Field(
        default=14 * 24,
        gt=0,
        description="how long an alert_id is remembered (make it longer than the alerts "
        "topic's retention: a re-delivered alert older than this would apply again)",
    )
    sent_ttl_hours: float = Field(
        default=30 * 24, gt=0, description="how long a delivered notification key is remembered"
    )
    resolved_retention_hours: float = Field(
        default=24, gt=0, description="a resolved item stays in Redis this long, then archived"
    )
    max_outbox_backlog: int = Field(
        default=20_000,
        ge=0,
        description="the router stops consuming while the notifier is this many outbox entries "
        "behind (the backlog waits in Kafka, not in Redis memory); 0: no limit",
    )
    stream_max_len: int = Field(
        default=100_000,
        ge=1_000,
        description="cap (MAXLEN ~) of the dead/suppressions/held streams",
    )
    topic_partitions: int = Field(
        default=6, ge=1, description="partitions of the topics the router creates"
    )
    topic_replication_factor: int = Field(
        default=1, ge=1, description="replication factor of the topics the router creates"
    )
    collections_topic: str = Field(
        default="loan.collections", description="contacts/promises published"
    )
    consumer_group: str = Field(default="loanwatch-router", description="router consumer group")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="work items and queues")
    redis_username: str | None = Field(
        default=None, description="Redis ACL user (none: the default user / requirepass)"
    )
    redis_password: SecretStr = Field(
        default=SecretStr(""),
        description="Redis password (requirepass, or the ACL user's); empty: the file below, "
        "else the local stack's (run/redis/auth/password) for its address 127.0.0.1:6379, "
        "else no AUTH",
    )
    redis_password_file: Path | None = Field(
        default=None, description="a file holding the Redis password (when the one above is empty)"
    )
    redis_prefix: str = Field(
        default="lw:", description="prefix of every Redis key the router owns"
    )
    routing_config: Path = Field(default=DEFAULT_ROUTING, description="routes, teams, escalation")
    compliance_config: Path = Field(default=DEFAULT_COMPLIANCE, description="contact rules")
    sms_gateway_url: str | None = Field(default=None, description="HTTP SMS gateway endpoint")
    sms_gateway_user: str = Field(default="", description="SMS gateway basic-auth user")
    sms_gateway_password: SecretStr = Field(
        default=SecretStr(""), description="SMS gateway password"
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP relay host")
    smtp_port: int = Field(default=25, description="SMTP relay port")
    smtp_from: str = Field(default="loanwatch@localhost", description="envelope and header sender")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none",
        description="none (a loopback relay), starttls (upgrade, certificate verified) or tls "
        "(implicit TLS, e.g. port 465)",
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the relay's certificate (default: system)"
    )
    smtp_username: str = Field(default="", description="SMTP AUTH user (empty: no AUTH)")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP AUTH password")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC-SHA256 key of webhooks (at least 16 characters); required as soon as "
        "a route has a webhook channel",
    )
    contact_key_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC key that turns a phone number into the key compliance counts by "
        "(at least 16 characters); required by routes serve",
    )
    alertmanager_url: str | None = Field(
        default=None, description="Alertmanager base URL (optional)"
    )
    api_host: str = Field(default="127.0.0.1", description="collector API bind address")
    api_port: int = Field(default=8780, description="collector API port")
    api_tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (chain) of the collector API; with the key: HTTPS only",
    )
    api_tls_key_file: Path | None = Field(
        default=None, description="PEM private key of that certificate"
    )
    api_tls_client_ca_file: Path | None = Field(
        default=None,
        description="CA whose client certificates the API requires (mutual TLS; optional)",
    )
    api_clients: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="collector API clients (JSON): {client_id: {token_sha256, scope "
        "(collector|supervisor|system), collector, teams}}; see docs/security.md",
    )
    api_tokens: dict[str, str] | None = Field(
        default=None,
        description="REMOVED (plaintext tokens): start-up refuses it; use api_clients",
    )
    notify_max_attempts: int = Field(
        default=5, ge=1, description="tries before dead-lettering a send"
    )
    notify_backoff_seconds: float = Field(
        default=1.0, gt=0, description="first retry delay; doubles"
    )
    notify_backoff_max_seconds: float = Field(
        default=60.0, gt=0, description="cap of the retry delay"
    )
    notify_concurrency: dict[str, int] = Field(
        default_factory=dict,
        description='sends in flight per channel lane, e.g. {"sms": 16} (JSON; default 8 each)',
    )
    closed_loan_ttl_days: float = Field(
        default=30.0,
        gt=0,
        description="how long a loan_closed is remembered: its alerts read later open nothing",
    )
    escalation_interval_seconds: float = Field(
        default=15.0, gt=0, description="period of the escalation scan, deferred sends, archive"
    )
    register_target: bool = Field(
        default=False,
        description="write a Prometheus file_sd target for the API port (/metrics) while running",
    )
    prometheus_targets_dir: Path | None = Field(
        default=None,
        description="file_sd folder of the loanwatch-router job; default the local stack's "
        "run/prometheus/targets/router/",
    )
    portfolio: str = Field(
        default="",
        description="`portfolio` label of the target: the one of the workers whose alerts this "
        "router reads (empty: no label, like a single local portfolio)",
    )
