"""The gap tracker counts a re-fetch only when a fetch made after its seek shows the gap
again: records fetched before the seek (a whole fetch of them can follow it) prove nothing.
Seen live: a restarted worker's lanes delivered ~3,500 such records after each seek and the
old count accepted the gap (lost 44..3631 of a lane) after five of them."""

from __future__ import annotations

import pytest
from faust.types import TP

from loanwatch.agents.gaps import GapTracker

pytestmark = pytest.mark.unit

LANE = TP("loan.collections", 5)


def test_records_fetched_before_the_seek_never_count_as_a_failed_refetch() -> None:
    gaps = GapTracker()
    assert gaps.on_gap(LANE, 44, 136, seeks_done=0, seek_pending=False) == "refetch"
    # the seek runs: what was already fetched keeps coming, past the gap
    assert gaps.on_gap(LANE, 44, 137, seeks_done=0, seek_pending=True) == "wait"
    # the seek completed, but these are still from the fetch before it (ascending)
    for offset in range(138, 3632):
        assert gaps.on_gap(LANE, 44, offset, seeks_done=1, seek_pending=False) == "wait"
    assert gaps.asked[LANE].times == 1
    gaps.filled(LANE)  # the fetch after the seek restarts at the committed offset: 44 came
    assert gaps.waiting() == {}


def test_a_gap_a_fetch_after_the_seek_shows_again_is_accepted_after_the_refetches() -> None:
    gaps = GapTracker(max_refetches=3)
    done = 0
    assert gaps.on_gap(LANE, 44, 900, done, False) == "refetch"
    actions = []
    for _ in range(3):
        done += 1  # its seek completed ...
        actions.append(gaps.on_gap(LANE, 44, 900, done, False))  # ... and 900 came first again
    assert actions == ["refetch", "refetch", "accept"]
    assert LANE not in gaps.asked


def test_a_seek_that_failed_is_asked_again_without_counting() -> None:
    gaps = GapTracker(max_refetches=1)
    assert gaps.on_gap(LANE, 44, 900, seeks_done=4, seek_pending=False) == "refetch"
    # no seek completed (it raised during a rebalance) and none runs: ask again
    assert gaps.on_gap(LANE, 44, 901, seeks_done=4, seek_pending=False) == "refetch"
    assert gaps.asked[LANE].times == 1
    assert gaps.on_gap(LANE, 44, 900, seeks_done=5, seek_pending=False) == "accept"


def test_a_request_while_a_seek_runs_waits_for_the_seek_after_it() -> None:
    gaps = GapTracker()
    assert gaps.on_gap(LANE, 44, 900, seeks_done=2, seek_pending=True) == "refetch"
    # the seek that was running when the gap was seen completes: it may predate the gap
    assert gaps.on_gap(LANE, 44, 900, seeks_done=3, seek_pending=True) == "wait"
    assert gaps.on_gap(LANE, 44, 900, seeks_done=4, seek_pending=False) == "refetch"
    assert gaps.asked[LANE].times == 2


def test_a_lane_that_never_restarts_is_accepted_after_max_stale_records() -> None:
    gaps = GapTracker(max_stale=10)
    assert gaps.on_gap(LANE, 44, 100, 0, False) == "refetch"
    got = [gaps.on_gap(LANE, 44, 101 + i, 1, False) for i in range(11)]
    assert got == ["wait"] * 10 + ["accept"]


def test_a_new_gap_on_the_lane_starts_over_and_revoked_partitions_are_dropped() -> None:
    gaps = GapTracker()
    gaps.on_gap(LANE, 44, 100, 0, False)
    assert gaps.on_gap(LANE, 60, 100, 3, False) == "refetch"  # the lane moved on: new gap
    assert gaps.asked[LANE].times == 1
    gaps.drop([5])
    assert gaps.waiting() == {}
