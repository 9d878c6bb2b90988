"""Records a resume of Faust's flow clears from the stream queues are fetched again
(``faust_fixes.reseek_after_resume``): the cause of a replacement worker receiving its lanes
from past the committed offsets after a SIGKILL (issue 12)."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables import recovery
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from loanwatch.agents.faust_fixes import reseek_after_resume

pytestmark = pytest.mark.unit


class FakeConsumer:
    def __init__(self, assigned: bool = True) -> None:
        self.seeks = 0
        self.assigned = assigned

    def assignment(self) -> set[Any]:
        return {"tp"} if self.assigned else set()

    async def perform_seek(self) -> None:
        self.seeks += 1


def test_the_installed_faust_clears_the_stream_queues_when_its_flow_resumes() -> None:
    """What makes the fix necessary: if this fails, re-read why reseek_after_resume exists."""
    assert "self.clear()" in inspect.getsource(FlowControlEvent.resume)
    source = inspect.getsource(recovery.Recovery.on_recovery_completed)
    seek, resume = source.index("perform_seek()"), source.index("flow_control.resume()")
    assert seek < resume  # the seek comes before the resume that clears what it fetched


async def test_a_resume_clears_the_queues_then_seeks_to_the_committed_offsets() -> None:
    flow = FlowControlEvent(initially_suspended=True)
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    consumer = FakeConsumer()
    app = SimpleNamespace(flow_control=flow, consumer=consumer)
    reseek_after_resume(app)
    reseek_after_resume(app)  # idempotent
    queue.put_nowait(7)  # fetched after the recovery's seek
    flow.resume()
    assert queue.empty()  # Faust's resume cleared it ...
    await asyncio.sleep(0)
    assert consumer.seeks == 1  # ... and the consumer reads from the committed offsets again


async def test_no_seek_without_an_assignment() -> None:
    flow = FlowControlEvent(initially_suspended=True)
    consumer = FakeConsumer(assigned=False)
    reseek_after_resume(SimpleNamespace(flow_control=flow, consumer=consumer))
    flow.resume()
    await asyncio.sleep(0)
    assert consumer.seeks == 0
