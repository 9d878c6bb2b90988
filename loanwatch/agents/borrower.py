"""The borrower stage: exposures of a borrower's loans, the cross-default floor, signal fan-out.

Keyed and partitioned by ``borrower_id`` (the exposures topic is a repartition of the ledger's
output). For each update it recomputes the NPL share (SPEC §5) and sends a floor command to
every loan whose floor must change; a borrower-keyed risk signal becomes one command per
active loan. Framework-free: the Faust agent in ``app.py`` drives it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import orjson

from loanwatch.agents.messages import floor_command, signal_command
from loanwatch.agents.state import DirectWrites, TableSink
from loanwatch.ledger.borrowers import Exposure, floor_applies, format_share, npl_share

log = logging.getLogger("loanwatch.borrower")


class BorrowerProcessor:
    def __init__(self, table: Any, threshold: Decimal, sink: TableSink | None = None) -> None:
        self.table = table
        self.sink = sink if sink is not None else DirectWrites(table)
        self.threshold = threshold

    def handle(
        self, value: bytes | None, commands: list[tuple[str, bytes]], partition: int = 0
    ) -> str | None:
        """Apply one exposure or signal; returns an error text instead of raising on bad input.

        ``partition`` is the exposure's (and so the borrower's state's) partition.
        """
        try:
            self._handle(orjson.loads(value or b""), commands, partition)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("bad borrower message", extra={"error": repr(exc)})
            return repr(exc)
        return None

    def _handle(self, body: Any, commands: list[tuple[str, bytes]], partition: int) -> None:
        borrower_id = body["borrower_id"]
        raw = self.table.get(borrower_id)
        state: dict[str, Any] = orjson.loads(raw) if raw else {"loans": {}, "flags": {}}
        loans: dict[str, list[Any]] = state["loans"]
        flags: dict[str, bool] = state["flags"]
        if body["kind"] == "signal":
            for loan_id in sorted(loans):
                commands.append((loan_id, signal_command(loan_id, body)))
            return
        loan_id = body["loan_id"]
        if body["active"]:
            loans[loan_id] = [body["npl"], body["outstanding"]]
        else:
            loans.pop(loan_id, None)
            flags.pop(loan_id, None)
        exposures = {k: Exposure(bool(v[0]), int(v[1])) for k, v in loans.items()}
        npl, total = npl_share(exposures)
        floor = floor_applies(npl, total, self.threshold)
        share = format_share(npl, total)
        for other in sorted(loans):
            if flags.get(other, False) != floor:
                flags[other] = floor
                commands.append(
                    (
                        other,
                        floor_command(other, floor, share, body["business_date"], body["cause"]),
                    )
                )
        self.sink.set(partition, borrower_id, orjson.dumps(state))
