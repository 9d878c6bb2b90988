"""``audit loan`` cost (issue 14): one loan's history against a plain replay of its partition.

Method: a simulated log (``--loans`` x ``--days``, seed 3) is turned into audit chains in
memory (``tests/audit_log.py``: the producer's routing, the worker's processor, the trail's
own records); then partition 0's chain is replayed (``audit replay``'s function) and, in the
same run, a loan of it gets its history (``audit loan``'s function: the same replay, plus the
loan's view after every input and the proof). No Kafka: reading is not timed.

Run: ``PYTHONPATH=. .venv/bin/python bench/audit_loan.py [--loans N] [--days D]``. Prints the
two times, their ratio, the history's steps, proof records and size; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loanwatch.audit.loan import loan_history
from loanwatch.audit.replay import ReplayReport, decode_records, replay_partition
from loanwatch.ledger.policy import Policy
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.topics import TopicNames
from tests.audit_log import audited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    buf = io.BytesIO()
    write_jsonl(Simulation(SimulationConfig(loans=args.loans, days=args.days, seed=3)), buf)
    chains, inputs = audited(buf.getvalue().splitlines())
    policy, names, p = Policy(), TopicNames(), 0
    records = [orjson.loads(s.value or b"{}") for s in chains[p]]
    loan = next(r["loan_id"] for r in records if r.get("loan_id"))
    started = time.perf_counter()
    report = ReplayReport()
    replay_partition(p, decode_records(chains[p]), inputs[p], policy, names, len(chains), report)
    replayed = time.perf_counter() - started
    started = time.perf_counter()
    found = loan_history(loan, p, chains[p], inputs[p], policy, names, len(chains))
    took = time.perf_counter() - started
    doc = found.document
    print(
        f"partition {p}: {len(records)} audit records, {report.inputs} inputs\n"
        f"replay {replayed:.2f} s; loan {loan} history {took:.2f} s "
        f"({took / replayed:.2f}x the replay)\n"
        f"{len(doc['steps'])} steps, {sum(len(s) for s in doc['proof']['segments'])} proof "
        f"records, {len(orjson.dumps(doc)) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
