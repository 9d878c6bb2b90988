"""``loanwatch archive``: the audit records and their inputs as daily Parquet files.

Layout under the archive root (plain files and folders, so it is the same on a local disk or an
object-store mount; Hive-style ``key=value`` folders that Arrow, Spark or DuckDB read as
columns)::

    audit/date=YYYY-MM-DD/partition=P.parquet    the chain records of that business day
    inputs/date=YYYY-MM-DD/partition=P.parquet   the input records those records name

A record's day is the ``business_date`` of the latest input record at or before it (a
checkpoint closing a day belongs to that day). Each file is written whole to a temporary name
and renamed, so a reader never sees half a file; archiving again rewrites the same files
(with what the topics hold by then). ``read_archive`` gives back what ``kafka_io`` reads, so
``audit verify`` and ``audit replay`` run on either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from loanwatch.audit.kafka_io import Stored

AUDIT_SCHEMA = pa.schema(
    [
        ("offset", pa.int64()),
        ("timestamp", pa.int64()),
        ("seq", pa.int64()),
        ("kind", pa.string()),
        ("value", pa.binary()),
    ]
)
INPUT_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("offset", pa.int64()),
        ("timestamp", pa.int64()),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("audit_seq", pa.int64()),
    ]
)
UNDATED = "undated"


def _day_of_each(stored: Sequence[Stored]) -> list[str]:
    days, current = [], None
    for item in stored:
        rec = orjson.loads(item.value or b"{}")
        if rec.get("kind") == "input" and rec.get("business_date"):
            current = rec["business_date"]
        days.append(current)
    first = next((d for d in days if d), UNDATED)
    return [d or first for d in days]


def write_archive(
    root: Path,
    audit: Mapping[int, Sequence[Stored]],
    inputs: Mapping[int, Mapping[tuple[str, int], Stored]],
) -> list[Path]:
    """Write every partition's records and named inputs by business day; return the files."""
    written: list[Path] = []
    for p, stored in sorted(audit.items()):
        days = _day_of_each(stored)
        by_day: dict[str, list[Stored]] = defaultdict(list)
        named: dict[str, list[tuple[Stored, str, int]]] = defaultdict(list)
        for item, day in zip(stored, days, strict=True):
            by_day[day].append(item)
            rec = orjson.loads(item.value or b"{}")
            if rec.get("kind") == "input":
                source = inputs.get(p, {}).get((rec["topic"], rec["offset"]))
                if source is not None:
                    named[day].append((source, rec["topic"], int(rec["seq"])))
        for day, items in by_day.items():
            table = pa.table(
                {
                    "offset": [i.offset for i in items],
                    "timestamp": [i.timestamp for i in items],
                    "seq": [orjson.loads(i.value or b"{}").get("seq") for i in items],
                    "kind": [orjson.loads(i.value or b"{}").get("kind") for i in items],
                    "value": [i.value for i in items],
                },
                schema=AUDIT_SCHEMA,
            )
            written.append(_write(root / "audit" / f"date={day}" / f"partition={p}.parquet", table))
            rows = named.get(day, [])
            table = pa.table(
                {
                    "topic": [t for _, t, _ in rows],
                    "offset": [s.offset for s, _, _ in rows],
                    "timestamp": [s.timestamp for s, _, _ in rows],
                    "key": [s.key for s, _, _ in rows],
                    "value": [s.value for s, _, _ in rows],
                    "audit_seq": [q for _, _, q in rows],
                },
                schema=INPUT_SCHEMA,
            )
            written.append(
                _write(root / "inputs" / f"date={day}" / f"partition={p}.parquet", table)
            )
    return written


def _write(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def _partition_of(path: Path) -> int:
    return int(path.stem.split("=", 1)[1])


def read_audit(root: Path) -> dict[int, list[Stored]]:
    """The audit records of every partition, in offset order, as the topic held them."""
    out: dict[int, list[Stored]] = defaultdict(list)
    for path in sorted((root / "audit").glob("date=*/partition=*.parquet")):
        p = _partition_of(path)
        for row in pq.read_table(path).to_pylist():
            out[p].append(Stored(p, row["offset"], row["timestamp"], None, row["value"]))
    for items in out.values():
        items.sort(key=lambda s: s.offset)
    return dict(out)


def read_inputs(root: Path, partition: int) -> dict[tuple[str, int], Stored]:
    """The archived input records of one partition, by (topic, offset)."""
    out: dict[tuple[str, int], Stored] = {}
    for path in sorted((root / "inputs").glob(f"date=*/partition={partition}.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[(row["topic"], row["offset"])] = Stored(
                partition, row["offset"], row["timestamp"], row["key"], row["value"]
            )
    return out
