"""Worker settings: declared once, typed, validated at start-up (env prefix ``LOANWATCH_``).

Nothing else in the worker reads the environment. Note that Faust itself also reads some
unprefixed variables (``BROKER_URL``, ``WEB_PORT``…) and lets them override its arguments;
the worker passes every value explicitly, so leave those unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from loanwatch.streams.topics import TopicNames

REPO = Path(__file__).resolve().parents[2]
DEMO_AUDIT_KEY = REPO / "run" / "audit" / "signing-key.pem"


class WorkerSettings(BaseSettings):
    """Everything a `loanwatch worker` needs to know."""

    model_config = SettingsConfigDict(env_prefix="LOANWATCH_", extra="forbid")

    app_id: str = Field("loanwatch", description="Faust app id: consumer group and table prefix.")
    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap URL (TLS and SASL: the LOANWATCH_KAFKA_* settings of "
        "loanwatch.streams.kafka_security).",
    )
    topic_replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor of the topics the worker creates (3 in production).",
    )
    store: str = Field("rocksdb://", description="Table store: rocksdb:// (or memory:// in tests).")
    partitions: int = Field(8, ge=1, description="Partitions of every topic and table.")
    topic_prefix: str = Field("", description="Prefix of every topic name (tests isolate runs).")
    web_host: str = Field("127.0.0.1", description="Where the HTTP API listens.")
    web_port: int = Field(6066, ge=1, le=65535, description="HTTP API port.")
    data_dir: Path = Field(REPO / "run" / "worker", description="RocksDB tables and Faust data.")
    config_dir: Path = Field(REPO / "config", description="Folder holding policy.yaml.")
    strategies_file: Path | None = Field(
        None,
        description="strategies.yaml (segments, treatment paths, experiments; docs/strategies.md)"
        ": unset, no segment is kept and no segment_changed or treatment_action alert is sent.",
    )
    early_warning_file: Path | None = Field(
        None,
        description="early_warning.yaml (model, lead days, threshold; docs/early-warning.md): "
        "unset, no score is kept and no pre_due_risk alert is sent.",
    )
    clock: Literal["event", "wall"] | None = Field(
        None, description="Business clock; default: the policy's `clock`."
    )
    wall_tick_seconds: float = Field(
        30.0, gt=0, description="How often `clock: wall` checks the date."
    )
    batch_size: int = Field(1000, ge=1, description="Most events processed as one batch.")
    batch_within: float = Field(
        0.01,
        gt=0,
        description="Longest wait (s) to fill a batch: the floor of an alert's latency at low "
        "rates (a backlog fills batches at once whatever it is).",
    )
    loan_cache: int = Field(
        2000, ge=0, description="Decoded loans kept per partition across batches (LRU)."
    )
    align_max_idle: float = Field(
        10.0,
        gt=0,
        description="Wait (s) for a caught-up input topic-partition that never carried a mark "
        "(an external producer) before a partition's held records are processed anyway "
        "(a forced release: counted, logged, alerted on).",
    )
    align_mark_max_idle: float = Field(
        120.0,
        gt=0,
        description="The same wait for a lane that carried marks (our producers write one "
        "every 500 records or 0.1 s, and every 0.1 s while idle): only a producer that stopped "
        "mid-log.",
    )
    align_buffer: int = Field(
        1000,
        ge=1,
        description="Records held per input topic-partition before it is paused (so the "
        "consumer fetches the topics that are behind).",
    )
    commit_interval: float = Field(1.0, gt=0, description="Seconds between offset commits.")
    standby_replicas: int = Field(
        1,
        ge=0,
        description="Standby copies of each table partition kept by other workers (fast "
        "takeover; each standby consumes and stores every changelog record of its partition).",
    )
    session_timeout: float = Field(
        30.0, gt=1, description="Seconds before the group evicts a silent (crashed) worker."
    )
    log_level: str = Field("info", description="Worker log level.")
    audit: bool = Field(
        True, description="Write the audit chain (topic `loan.audit`, docs/audit.md)."
    )
    audit_key_file: Path = Field(
        DEMO_AUDIT_KEY,
        description="Ed25519 private key (PKCS#8 PEM) that signs the audit checkpoints; the "
        "default path is the demo key `loanwatch stack up` makes (made on first use if "
        "missing); any other path must exist.",
    )
    audit_checkpoint_every: int = Field(
        1000,
        ge=1,
        description="Audit records between two signed checkpoints (besides one "
        "at the end of every business day).",
    )

    @property
    def demo_audit_key(self) -> bool:
        return self.audit_key_file == DEMO_AUDIT_KEY

    def topic_names(self) -> TopicNames:
        return TopicNames().with_prefix(self.topic_prefix)
