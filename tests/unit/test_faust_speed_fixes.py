"""The worker's Faust speed fixes (``agents/faust_fixes.py``) keep Faust's semantics.

Eager delivery: Faust's fetch loop calls
``await self.wait_first(callback(message), self.suspend_flow.wait())`` per message. Patched:
a callback that never suspends finishes in place (no task); one that suspends goes on under
Faust's own ``wait_first``, so the suspended flow still interrupts it, and then it is cancelled
as a task would be. Run against a bare ``mode`` service (what ``wait_first`` needs of the
consumer), no broker.

Fewer yields: the compiled stream iterator's ``sleep(0)`` before each event gives the loop a
turn once every N events; other tasks still get their turns, real sleeps are untouched.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from mode import Service

from loanwatch.agents.faust_fixes import eager_message_delivery, fewer_stream_yields

pytestmark = pytest.mark.unit


class Host(Service):
    """What ``wait_first`` reads of its consumer: ``_stopped``, ``_crashed``, ``should_stop``."""


def wait_first(*coros: Any) -> Any:
    eager_message_delivery()
    return Consumer.wait_first(Host(), *coros)  # type: ignore[arg-type]


async def test_a_callback_that_does_not_suspend_finishes_in_place() -> None:
    seen: list[str] = []
    flow = asyncio.Event()

    async def deliver() -> str:
        seen.append("delivered")
        return "ok"

    tasks_before = len(asyncio.all_tasks())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the flow's wait() is closed, never "never awaited"
        result = await wait_first(deliver(), flow.wait())
    assert seen == ["delivered"] and result.results == ["ok"] and not result.stopped
    assert len(asyncio.all_tasks()) == tasks_before  # no task was left behind


async def test_a_callback_that_suspends_is_resumed_when_what_it_waits_for_is_done() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    flow = asyncio.Event()

    async def deliver() -> str:
        value = await gate  # a full queue: waits for room
        return f"after {value}"

    asyncio.get_running_loop().call_later(0.01, gate.set_result, "room")
    result = await wait_first(deliver(), flow.wait())
    assert result.results == ["after room"] and not result.stopped


async def test_an_error_after_a_suspension_reaches_the_fetch_loop() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def deliver() -> None:
        await gate

    asyncio.get_running_loop().call_later(0.01, gate.set_exception, ValueError("bad record"))
    with pytest.raises(ValueError, match="bad record"):
        await wait_first(deliver(), asyncio.Event().wait())


async def test_a_suspended_flow_interrupts_a_suspended_callback_which_is_cancelled() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    flow = asyncio.Event()
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await never  # flow control during a rebalance
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    asyncio.get_running_loop().call_later(0.01, flow.set)
    result = await wait_first(deliver(), flow.wait())
    await asyncio.sleep(0)  # the cancellation of the loser runs
    assert len(result.done) == 1 and result.results == [True]  # the flow's wait() won
    assert seen == ["cancelled", "finally"] and never.cancelled()


async def test_an_error_before_any_suspension_propagates_and_closes_the_others() -> None:
    async def deliver() -> None:
        raise KeyError("no callback for this partition")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KeyError):
            await wait_first(deliver(), asyncio.Event().wait())


def test_the_patch_is_applied_once() -> None:
    eager_message_delivery()
    patched = Consumer.wait_first
    eager_message_delivery()
    assert Consumer.wait_first is patched


# --- fewer_stream_yields ------------------------------------------------------------------------


async def test_the_stream_iterator_yields_to_the_loop_once_every_n_events() -> None:
    from faust._cython import streams as compiled

    assert fewer_stream_yields(every=64)  # the compiled iterator is installed with faust
    turns = 0

    async def other_task() -> None:  # counts the loop turns it is given
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    await asyncio.sleep(0)  # the ticker starts
    started = turns
    for _ in range(640):  # what StreamIterator.next awaits before each event
        await compiled.sleep(0)
    ticker.cancel()
    assert turns - started == 10  # one turn per 64 events, not 640
    assert await compiled.sleep(0.001, "value") == "value"  # a real sleep is left alone


def test_fewer_yields_is_applied_once() -> None:
    from faust._cython import streams as compiled

    fewer_stream_yields()
    patched = compiled.sleep
    fewer_stream_yields()
    assert compiled.sleep is patched


# --- stream queues without per-partition pressure pauses ---


async def test_a_wait_when_full_queue_never_reports_pressure_and_a_full_one_makes_put_wait() -> (
    None
):
    from mode.utils.queues import FlowControlEvent

    from loanwatch.agents.faust_fixes import WaitWhenFullQueue

    flow = FlowControlEvent(initially_suspended=False)
    queue = WaitWhenFullQueue(maxsize=4, flow_control=flow)
    pressed: list[str] = []
    for i in range(4):  # a stock queue reports pressure from qsize >= 4 / 1.25 = 3
        queue.put_nowait_enhanced(
            i, on_pressure_high=lambda: pressed.append("high"), on_pressure_drop=lambda: None
        )
    assert pressed == [] and queue.full()
    waiting = asyncio.ensure_future(queue.put(4))  # the conductor's path for a full queue
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert await queue.get() == 0
    await asyncio.wait_for(waiting, 1)
    assert [queue.get_nowait() for _ in range(4)] == [1, 2, 3, 4]


async def test_a_stock_queue_would_have_paused_the_partition() -> None:
    """The contrast: Faust's own queue calls the pause (on_pressure_high) at 3 of 4."""
    from mode.utils.queues import FlowControlEvent, ThrowableQueue

    queue: Any = ThrowableQueue(maxsize=4, flow_control=FlowControlEvent())
    pressed: list[int] = []
    for i in range(4):
        queue.put_nowait_enhanced(
            i, on_pressure_high=lambda i=i: pressed.append(i), on_pressure_drop=lambda: None
        )
    assert pressed == [3]


def test_the_app_makes_its_stream_queues_wait_when_full() -> None:
    import faust

    from loanwatch.agents.faust_fixes import WaitWhenFullQueue, queues_wait_when_full

    app = faust.App("lw-unit-queues", broker="kafka://127.0.0.1:1")
    queues_wait_when_full(app)
    queue = app.topic("lw-unit-queues-t").queue
    assert isinstance(queue, WaitWhenFullQueue)
    assert queue.maxsize == app.conf.stream_buffer_maxsize
