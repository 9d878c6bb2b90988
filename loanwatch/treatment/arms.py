"""Champion-challenger arm assignment: a stable hash of (experiment id, loan id).

The same loan always lands in the same arm of an experiment, in every process, worker and
replay (blake2b, not Python's salted ``hash``), and the arms take their set shares of the
loans. Pure: no state, no randomness, no clock.
"""

from __future__ import annotations

import hashlib

from loanwatch.treatment.model import Arm, Experiment

#: Hash points per percent: 10,000 buckets give the shares a resolution of 0.01 %.
_SCALE = 10_000


def point(experiment_id: str, loan_id: str) -> int:
    """The loan's place in [0, 10000) for this experiment."""
    digest = hashlib.blake2b(f"{experiment_id}|{loan_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _SCALE


def arm_of(experiment: Experiment, loan_id: str) -> Arm:
    """The arm of ``loan_id``: arms take consecutive ranges of the points by their shares."""
    at = point(experiment.experiment_id, loan_id)
    upper = 0
    for arm in experiment.arms:
        upper += arm.share * _SCALE // 100
        if at < upper:
            return arm
    return experiment.arms[-1]  # shares sum to 100: only reached by a 0-share last arm
