"""The topics the router itself writes (its dead letters, the archive of resolved items),
created at start-up when missing with the configured partitions and replication factor.

The broker does not auto-create topics (``auto.create.topics.enable=false``, as in production),
so a router that wrote to a missing topic would fail on its first bad record.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger("loanwatch.routing.kafka_topics")
TOPIC_ALREADY_EXISTS = 36  # another router created it first


async def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    replication_factor: int,
    client_options: dict[str, Any] | None = None,
) -> list[str]:
    """Create each of ``names`` that does not exist; return those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="loanwatch-router", **(client_options or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n and n not in existing]
        if missing:
            answer = await admin.create_topics(
                [NewTopic(n, partitions, replication_factor) for n in missing]
            )
            for topic, code, *_ in answer.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(
                        f"could not create topic {topic!r} (Kafka error code {code}); check "
                        "LOANWATCH_TOPIC_REPLICATION_FACTOR against the number of brokers"
                    )
            log.info(
                "topics created",
                extra={"topics": missing, "replication_factor": replication_factor},
            )
        return missing
    finally:
        await admin.close()
