"""Champion-challenger arms: stable across runs and processes, split at the set shares."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from loanwatch.treatment.arms import arm_of, point
from loanwatch.treatment.model import Arm, Experiment

EXPERIMENT = Experiment("early-2026q2", "early", (Arm("champion", 80, None), Arm("b", 20, "x")))
LOANS = [f"L{i:07d}" for i in range(100_000)]


def test_the_split_is_within_one_percent_of_the_set_shares_on_100k_loans() -> None:
    counts = Counter(arm_of(EXPERIMENT, loan).name for loan in LOANS)
    assert set(counts) == {"champion", "b"}
    assert abs(counts["champion"] / len(LOANS) - 0.80) < 0.01
    assert abs(counts["b"] / len(LOANS) - 0.20) < 0.01


def test_three_arms_take_their_shares() -> None:
    three = Experiment("e3", "s", (Arm("a", 50, None), Arm("b", 30, None), Arm("c", 20, None)))
    counts = Counter(arm_of(three, loan).name for loan in LOANS)
    for arm in three.arms:
        assert abs(counts[arm.name] / len(LOANS) - arm.share / 100) < 0.01


def test_the_experiment_id_reshuffles_the_loans() -> None:
    other = Experiment("another", "early", EXPERIMENT.arms)
    same = sum(arm_of(EXPERIMENT, x).name == arm_of(other, x).name for x in LOANS[:10_000])
    # independent hashes: agreement is 0.8^2 + 0.2^2 = 68 %, not 100 %
    assert 6_300 < same < 7_300


def test_a_zero_share_arm_gets_no_loan() -> None:
    none = Experiment("z", "s", (Arm("all", 100, None), Arm("off", 0, None)))
    assert {arm_of(none, loan).name for loan in LOANS[:5_000]} == {"all"}


def test_assignment_is_the_same_in_another_process() -> None:
    sample = LOANS[::997]
    here = [arm_of(EXPERIMENT, loan).name for loan in sample]
    code = (
        "import sys\n"
        "from loanwatch.treatment.arms import arm_of\n"
        "from loanwatch.treatment.model import Arm, Experiment\n"
        "e = Experiment('early-2026q2', 'early', (Arm('champion', 80, None), Arm('b', 20, 'x')))\n"
        "print(','.join(arm_of(e, x).name for x in sys.argv[1:]))\n"
    )
    # a different hash seed: Python's own hash() would differ, ours must not
    env = {"PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code, *sample], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip().split(",") == here
    assert here.count("champion") > 0 and here.count("b") > 0


def test_points_are_pinned() -> None:
    # the hash is part of the contract: a change would move live loans between arms
    assert point("early-2026q2", "L0000001") == point("early-2026q2", "L0000001")
    assert [point("exp", f"L{i}") for i in range(3)] == [3430, 9543, 4146]
