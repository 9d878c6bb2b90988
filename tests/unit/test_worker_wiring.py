"""``build_worker`` applies the Faust fixes the ledger stage depends on (no broker needed).

The timestamp alignment is only safe while its own buffers are the one flow control on the
input partitions: the worker's stream queues must never pause a partition for pressure, and
the speed fixes (which fill those queues fast) are only safe with that. Checked in a fresh
interpreter, since the class-level patches would otherwise be left by other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import json, sys, pathlib
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from loanwatch.agents.app import build_worker
from loanwatch.agents.faust_fixes import WaitWhenFullQueue
from loanwatch.agents.settings import WorkerSettings

before = getattr(Consumer, "_loanwatch_eager_delivery", False)
worker = build_worker(WorkerSettings(data_dir=pathlib.Path(sys.argv[1]), store="memory://"))
try:
    from faust._cython import streams as compiled
    fewer = getattr(compiled, "_loanwatch_fewer_yields", False)
except ImportError:
    fewer = "no compiled iterator"
inputs = worker.app.topic("probe-inputs").queue
print(json.dumps({
    "eager_before": before,
    "eager": getattr(Consumer, "_loanwatch_eager_delivery", False),
    "fewer_yields": fewer,
    "rewind": getattr(AIOKafkaConsumerThread, "_loanwatch_rewinds_uncommitted", False),
    "queue_waits_when_full": isinstance(inputs, WaitWhenFullQueue),
    "queue_presses": inputs.in_pressure_high_state(lambda: None),
}))
"""


def test_the_worker_applies_the_faust_fixes_and_queues_that_never_pause(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "eager_before": False,  # a fresh interpreter: only build_worker can have patched it
        "eager": True,
        "fewer_yields": True,
        "rewind": True,
        "queue_waits_when_full": True,
        "queue_presses": False,
    }
