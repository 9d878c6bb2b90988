"""A log turned into audit chains and input lanes in memory, as a live worker would write them.

The producer's own plan routes each line (borrower's partition, ticks to every partition,
timestamps strictly increasing in log order); each partition's records then go, in that order
(the worker's merge order), through the worker's ledger processor, and each gets its audit
record from the trail's own ``outcome``. No Kafka: unit tests of what reads a trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from loanwatch.agents.ledger import Inbound, Outbox
from loanwatch.audit import keys
from loanwatch.audit.chain import Chain, ChainHead
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.replay import new_processor
from loanwatch.audit.trail import outcome
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.ledger.policy import Policy
from loanwatch.streams.producer import plan, scan_directory
from loanwatch.streams.topics import TopicNames

KEY = Ed25519PrivateKey.generate()


def audited(
    lines: Sequence[bytes],
    partitions: int = 4,
    names: TopicNames | None = None,
    policy: Policy | None = None,
    as_of: date | None = None,
    reuse_views: bool = False,
    early_warning: EarlyWarningPolicy | None = None,
) -> tuple[dict[int, list[Stored]], dict[int, dict[tuple[str, int], Stored]]]:
    """(audit records per partition, input records per partition by (topic, offset))."""
    names = names or TopicNames()
    policy = policy or Policy()
    tz = policy.tz
    lanes: dict[int, dict[tuple[str, int], Stored]] = {p: {} for p in range(partitions)}
    order: dict[int, list[Stored]] = {p: [] for p in range(partitions)}
    topic_of: dict[tuple[int, int], str] = {}
    next_offset: dict[tuple[str, int], int] = {}
    stamp = 1_700_000_000_000
    steps = plan(
        lines,
        names=names,
        partitions=partitions,
        tz=tz,
        as_of=as_of,
        directory=scan_directory(lines),
    )
    for step in steps:
        stamp += 1
        for rec in step.records:
            p = rec.partition if rec.partition is not None else 0
            offset = next_offset.get((rec.topic, p), 0)
            next_offset[(rec.topic, p)] = offset + 1
            stored = Stored(p, offset, stamp, rec.key, rec.value)
            lanes[p][(rec.topic, offset)] = stored
            order[p].append(stored)
            topic_of[(p, len(order[p]) - 1)] = rec.topic
    signer = keys.Signer(KEY)
    chains: dict[int, list[Stored]] = {}
    for p in range(partitions):
        processor = new_processor(p, policy, names, partitions, early_warning)
        engine = processor.runtimes[p].engine
        chain = Chain(ChainHead(p), signer)
        for i, stored in enumerate(order[p]):
            topic = topic_of[(p, i)]
            out = Outbox()
            msg = Inbound(
                topic, p, stored.offset, stored.timestamp / 1000, stored.key, stored.value
            )
            processor.handle(msg, out)
            seen = outcome(
                stored.value, out.alerts, out.dead_letters, engine, policy, reuse_views=reuse_views
            )
            chain.input(
                topic=topic,
                offset=stored.offset,
                ts=stored.timestamp,
                value=stored.value,
                loan_id=seen.loan_id,
                state_sha256=seen.state_sha256,
                alerts=seen.alerts,
                dead_letters=seen.dead_letters,
                business_date=seen.business_date,
            )
        chains[p] = [Stored(p, o, 0, None, v) for o, v in enumerate(chain.take())]
    return chains, lanes
