"""Fault injection for live tests: slow metadata propagation of freshly created topics.

Put this folder on a worker's ``PYTHONPATH`` (Python imports ``sitecustomize`` at start-up) and
set ``LOANWATCH_FAULT_EMPTY_TOPICS`` to a regular expression: for
``LOANWATCH_FAULT_EMPTY_SECONDS`` (default 6) after the process started, every metadata
response of every aiokafka client in the process reports the matching topics with **no
partitions**, as a broker does for a topic created a moment ago whose partitions its metadata
cache does not have yet. That is the state in which a brand-new deployment once saw its table
changelog topics (CI: Faust's partition check then raised ``PartitionsMismatch``, 8 vs 0).

Without the variable nothing is patched. Never used outside tests.
"""

from __future__ import annotations

import os
import re
import sys
import time

_PATTERN = os.environ.get("LOANWATCH_FAULT_EMPTY_TOPICS")


def _install(pattern: str, seconds: float) -> None:
    from aiokafka.cluster import ClusterMetadata

    matches = re.compile(pattern).search
    until = time.monotonic() + seconds
    original = ClusterMetadata.update_metadata
    hidden: set[str] = set()

    def update_metadata(self: ClusterMetadata, metadata: object) -> None:
        if time.monotonic() < until and getattr(metadata, "API_VERSION", 0) >= 1:
            topics = []
            for entry in metadata.topics:  # type: ignore[attr-defined]
                name = entry[1]
                if matches(name) and entry[3]:
                    if name not in hidden:
                        hidden.add(name)
                        print(f"FAULT: {name} reported with 0 partitions", file=sys.stderr)
                    entry = (*entry[:3], [], *entry[4:])
                topics.append(entry)
            metadata.topics = topics  # type: ignore[attr-defined]
        original(self, metadata)

    ClusterMetadata.update_metadata = update_metadata  # type: ignore[method-assign]


if _PATTERN:
    _install(_PATTERN, float(os.environ.get("LOANWATCH_FAULT_EMPTY_SECONDS", "6")))
