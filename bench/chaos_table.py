"""Collect the ``CHAOS`` rows the fault tests print (``make chaos``) into one table.

Reads pytest's output on stdin, echoes it, then prints: fault, events in, states equal to
replay, alerts lost, duplicate alert ids, dead letters by reason, time to recover (s). A row
exists only for a test that passed (equality and no loss are asserted before it is printed).
"""

from __future__ import annotations

import sys

HEADER = (
    "fault",
    "events in",
    "states = replay",
    "alerts lost",
    "duplicate alert ids",
    "dead letters by reason",
    "recover / drain (s)",
)


def main() -> int:
    rows: list[list[str]] = []
    for line in sys.stdin:
        sys.stdout.write(line)
        start = line.find("CHAOS\t")
        if start >= 0:
            rows.append(line[start:].rstrip("\n").split("\t")[1:])
    print("\n| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not rows:
        print("(no fault test passed)")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
