"""The live simulator: the generator's events published to Kafka on an accelerated business clock.

``--speed 1d/s`` maps one business day onto one wall second: an event that occurred at 18:00
on the third business day is published 2.75 s after the first day's midnight. A ``clock_tick``
(``event_id`` ``live-<date>``) goes to every partition at the start of each business day, empty
days included, so the worker's event clock keeps moving (and loans keep aging) when a day has
no events. Publishing goes through :class:`loanwatch.streams.producer.LogProducer` (routing,
broadcast ticks, increasing timestamps).

It must never change, drop or reorder the generator's events, and never read the wall clock
for anything but pacing (event times come from the generator, so a seed gives the same log).
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from loanwatch.ledger.parse import business_date_of, decode
from loanwatch.streams.producer import Item, LogProducer, ProduceReport, Step, ensure_topics
from loanwatch.streams.topics import TopicNames

log = logging.getLogger("loanwatch.simulate.live")

_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*/\s*(\d+(?:\.\d+)?)?\s*s\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SpeedError(ValueError):
    """A ``--speed`` that cannot be read: write it as ``<n><s|m|h|d>/s``, e.g. ``1d/s``."""


def parse_speed(text: str) -> float:
    """Business seconds per wall second: ``1d/s`` -> 86400.0, ``1d/2s`` -> 43200.0."""
    match = _SPEED.match(text)
    if match is None:
        raise SpeedError(f"speed {text!r}: expected <n><s|m|h|d>/s, e.g. 1d/s or 6h/s")
    quantity, unit, per = match.groups()
    speed = float(quantity) * _UNIT_SECONDS[unit] / float(per or 1)
    if speed <= 0:
        raise SpeedError(f"speed {text!r} must be > 0")
    return speed


def day_tick(day: date) -> dict[str, Any]:
    return {"event_id": f"live-{day}", "type": "clock_tick", "business_date": day.isoformat()}


def _read(item: Item, tz: ZoneInfo) -> tuple[date | None, bool]:
    """The item's business date (None if unreadable) and whether it is a clock_tick."""
    obj = dict(item) if isinstance(item, Mapping) else decode(item)
    if not isinstance(obj, dict):
        return None, False
    return business_date_of(obj, tz), obj.get("type") == "clock_tick"


def with_day_ticks(events: Iterable[Item], tz: ZoneInfo) -> Iterator[Item]:
    """The events with a tick at the start of each business day, empty days included.

    A day the source already opens with its own ``clock_tick`` gets no second one. Events may
    be dicts or wire lines (a simulator's deliberately broken lines pass through).
    """
    ticked: date | None = None
    for event in events:
        day, is_tick = _read(event, tz)
        if day is not None and (ticked is None or ticked < day):
            while ticked is None or ticked < day:
                ticked = day if ticked is None else ticked + timedelta(days=1)
                if ticked < day or not is_tick:
                    yield day_tick(ticked)
        yield event


def business_instant(step: Step, tz: ZoneInfo) -> datetime | None:
    """When a step happens on the business timeline: the event's time, or a tick's midnight."""
    occurred = step.event.get("occurred_at") if step.event is not None else None
    if isinstance(occurred, str):
        try:
            stamp = datetime.fromisoformat(occurred)
        except ValueError:
            stamp = None
        if stamp is not None and stamp.tzinfo is not None:
            return stamp.astimezone(tz)
    if step.business_date is not None:
        return datetime.combine(step.business_date, dtime(), tz)
    return None


class Pacer:
    """Holds each step until its business instant comes round on the accelerated clock.

    The business clock starts at midnight of the first step's date, when the first step is
    paced. A step already due (the producer fell behind, or a late event) is not held.
    """

    def __init__(
        self,
        speed: float,
        tz: ZoneInfo,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.speed = speed
        self.tz = tz
        self._monotonic = monotonic
        self._sleep = sleep
        self._origin: tuple[datetime, float] | None = None
        self._day: date | None = None

    def wall_at(self, instant: datetime) -> float:
        """The monotonic time at which ``instant`` comes round (origin set on first use)."""
        if self._origin is None:
            midnight = datetime.combine(instant.astimezone(self.tz).date(), dtime(), self.tz)
            self._origin = (midnight, self._monotonic())
        business0, wall0 = self._origin
        return wall0 + (instant - business0).total_seconds() / self.speed

    async def wait(self, step: Step) -> None:
        instant = business_instant(step, self.tz)
        if instant is None:
            return
        delay = self.wall_at(instant) - self._monotonic()
        if delay > 0:
            await self._sleep(delay)
        is_tick = step.event is not None and step.event.get("type") == "clock_tick"
        if is_tick and step.business_date is not None and step.business_date != self._day:
            self._day = step.business_date
            log.info("business day", extra={"business_date": str(self._day)})


async def run_live(
    events: Iterable[Item],
    *,
    bootstrap: str,
    names: TopicNames,
    partitions: int,
    speed: float,
    tz: ZoneInfo,
    pacer: Pacer | None = None,
    max_clock_jump_days: int | None = None,
) -> ProduceReport:
    """Create the topics if missing, then publish the events paced by ``speed``."""
    await ensure_topics(bootstrap, names, partitions)
    pace = pacer or Pacer(speed, tz)
    async with LogProducer(bootstrap, names, tz=tz, max_clock_jump_days=max_clock_jump_days) as out:
        report = await out.publish(with_day_ticks(events, tz), pace=pace.wait)
    log.info("live simulation done", extra={"counts": dict(report.counts)})
    return report


def live_command(
    events: Iterable[Item],
    *,
    speed: str,
    bootstrap: str,
    topic_prefix: str,
    partitions: int,
) -> None:
    """``loanwatch simulate --live``: publish until the run ends, SIGINT or SIGTERM (flushing)."""
    import click

    from loanwatch.ledger.policy_file import PolicyError, load_policy
    from loanwatch.streams.cli import configure_logging
    from loanwatch.streams.producer import ProduceError

    try:
        business_per_second = parse_speed(speed)
        policy = load_policy()
        tz = policy.tz
    except (SpeedError, PolicyError) as exc:
        raise click.BadParameter(str(exc)) from exc
    configure_logging()
    _configure_live_logging()

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        names = TopicNames().with_prefix(topic_prefix)
        try:
            await run_live(
                events,
                bootstrap=bootstrap,
                names=names,
                partitions=partitions,
                speed=business_per_second,
                tz=tz,
                max_clock_jump_days=policy.max_clock_jump_days,
            )
        except asyncio.CancelledError:
            log.info("live simulation stopped by a signal")

    try:
        asyncio.run(main())
    except ProduceError as exc:
        raise click.ClickException(f"{exc} (is the stack up? `loanwatch stack up`)") from exc


def _configure_live_logging() -> None:
    from loanwatch.stack.log import JsonFormatter

    if any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
