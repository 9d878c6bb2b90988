"""The borrower agent's loop: exposures in, borrower state and commands out, then ack.

Per batch: each exposure (or borrower-keyed signal) goes through the
:class:`~loanwatch.agents.borrower.BorrowerProcessor`, which writes the borrower's state
(store now, changelog record into the bulk send) and makes commands for the loans; the
commands keep their cause's timestamp, so the loan's partition merges them with its inputs at
that point of the producer's order (see :mod:`~loanwatch.agents.ledger_stage`). Everything is
sent as record batches and awaited before the batch is acked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.types import EventT

from loanwatch.agents.bulk import BulkProducer
from loanwatch.agents.ledger_stage import of_current_generation, set_current
from loanwatch.agents.messages import dead_letter_record
from loanwatch.ledger.engine import DeadLetter

if TYPE_CHECKING:
    from loanwatch.agents.app import Worker


class BorrowerStage:
    def __init__(self, worker: Worker, bulk: BulkProducer) -> None:
        self.worker = worker
        self.bulk = bulk  # this agent's own: the ledger stage sends its batches separately
        self.commands = worker.names.commands
        self.dead_letters = worker.names.dead_letters

    async def take(self, stream: Any, events: list[EventT[Any]]) -> None:
        worker, bulk = self.worker, self.bulk
        current = of_current_generation(worker.app, events)
        handled: dict[str, int] = {}
        for event in current:
            m = event.message
            set_current(event)  # the borrower's state lives on the exposure's partition
            made: list[tuple[str, bytes]] = []
            error = worker.borrowers.handle(m.value, made, m.partition)
            for key, value in made:
                bulk.add_keyed(self.commands, key.encode(), value, m.timestamp)
            if error is not None:  # the same dead letter as the inputs': source and bytes
                worker.metrics.dead_letters.labels(reason="bad_exposure").inc()
                raw = m.value or b""
                letter = DeadLetter("bad_exposure", error, raw.decode("utf-8", "replace"))
                record = dead_letter_record(
                    letter, topic=m.topic, partition=m.partition, offset=m.offset, raw=m.value
                )
                bulk.add_keyed(self.dead_letters, m.key, record)
            handled[f"{m.topic}:{m.partition}"] = m.offset
        await bulk.send()
        worker.ledger.progress.update(handled)
        for event in current:
            await stream.ack(event)
