"""Writing a generated stream as a ``.jsonl`` event log (orjson, one line per event).

The writer streams: it holds only a small batch of encoded lines. Malformed lines (``bytes``
items) are written exactly as generated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import BinaryIO

import orjson

from loanwatch.simulate.events import Emitted

_BATCH = 2_048


def write_jsonl(
    items: Iterable[Emitted],
    out: BinaryIO,
    on_day: Callable[[int], None] | None = None,
) -> int:
    """Write ``items`` to ``out``; call ``on_day(lines_so_far)`` at each clock tick.

    Returns the number of lines written.
    """
    dumps = orjson.dumps
    batch: list[bytes] = []
    lines = 0
    for item in items:
        if isinstance(item, bytes):
            batch.append(item)
        else:
            if on_day is not None and item["type"] == "clock_tick":
                on_day(lines)
            batch.append(dumps(item))
        lines += 1
        if len(batch) >= _BATCH:
            batch.append(b"")
            out.write(b"\n".join(batch))
            batch.clear()
    if batch:
        batch.append(b"")
        out.write(b"\n".join(batch))
    out.flush()
    return lines
