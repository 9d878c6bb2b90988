"""Borrowers that respond: how a hidden profile answers a treatment action (issue 18).

Used only by the closed loop (:mod:`loanwatch.simulate.closed_loop`, ``loanwatch simulate
--strategies``): without strategies no action ever reaches a loan and none of this runs. The
profile stays hidden: the engine, the treatment tracker and the worker see only the events a
reaction produces (a ``contact_logged`` for the action carried out, then perhaps a payment or a
``schedule_revised``), never the profile.

:func:`reaction` is a pure function of (profile, reachable, action, draw); the draw comes from a
``Random`` seeded by (run seed, loan, day, action), so a reaction never shifts the run's own
random stream and the same loan answers the same action on the same day alike in every
strategy. :func:`carry_out` applies it to the simulator's view of the loan. The table is in
docs/strategies.md ("Borrowers that respond").
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from loanwatch.simulate.context import Ctx, loan_id
from loanwatch.simulate.loans import (
    CLOSED,
    FOUND,
    NEVER,
    PROMISE,
    TOKEN,
    Loan,
    cover_until,
    days_past_due,
    owed_now,
)
from loanwatch.simulate.profiles import (
    CHRONIC,
    DEFAULTER,
    OCCASIONAL,
    PARTIAL,
    borrower_traits,
    mix64,
)
from loanwatch.simulate.recovery import revise

#: The SPEC section 1 channel each action is logged on (as the collector API logs it).
ACTION_CHANNELS: dict[str, str] = {
    "sms_reminder": "sms",
    "email": "email",
    "call_priority": "call",
    "restructure_offer": "letter",
    "field_visit": "visit",
    "legal_referral": "letter",
    "agency_placement": "letter",
}
_ACTION_CODE = {name: i for i, name in enumerate(ACTION_CHANNELS)}

#: Share of borrowers of each profile (on_time .. defaulter) no call or message ever reaches.
UNREACHABLE_SHARE: tuple[float, ...] = (0.0, 0.05, 0.10, 0.25, 0.35)
_UNREACHABLE_SALT = 0x7E5B0D5E

# Chance that a reachable borrower pays what is owed after each kind of action, by profile.
_REMIND = (0.90, 0.75, 0.10, 0.15, 0.0)  # sms_reminder, email
_CALL = (0.95, 0.85, 0.10, 0.15, 0.0)  # call_priority, field_visit (once reached)
_LEGAL = (0.95, 0.90, 0.20, 0.30, 0.60)  # legal_referral
_AGENCY = (0.95, 0.90, 0.15, 0.20, 0.30)  # agency_placement
_HARDSHIP = (0.0, 0.0, 0.60, 0.50, 0.0)  # a reached borrower reports hardship
_ACCEPT = (0.0, 0.0, 0.70, 0.60, 0.15)  # accepts a restructure offer
_FOUND = 0.5  # a field visit or an agency finds an unreachable borrower


@dataclass(frozen=True, slots=True)
class Reaction:
    """What the borrower does about one action carried out."""

    outcome: str  # the ``contact_logged`` outcome of the action
    pays_in: int | None = None  # pays what is owed this many days later (None: no payment)
    restructure: bool = False  # accepts the offer: a ``schedule_revised`` (restructure) follows
    found: bool = False  # an unreachable borrower is found (calls reach them from now on)
    becomes: int | None = None  # the profile they behave as afterwards (None: unchanged)


def unreachable(seed: int, borrower: int) -> bool:
    """Hidden like the profile: a pure function of (seed, borrower)."""
    profile, _ = borrower_traits(seed, borrower)
    h = mix64(mix64(seed ^ _UNREACHABLE_SALT) ^ borrower)
    return (h >> 11) / float(1 << 53) < UNREACHABLE_SHARE[profile]


def draw_for(seed: int, idx: int, day: int, action: str) -> Random:
    """The reaction's own random source: the same for the same loan, day and action."""
    key = mix64(mix64(mix64(seed ^ _UNREACHABLE_SALT) ^ idx) ^ (day << 4 | _ACTION_CODE[action]))
    return Random(key)


def _pays(chance: float, rng: Random, lo: int, hi: int) -> int | None:
    return rng.randint(lo, hi) if rng.random() < chance else None


def reaction(profile: int, reachable: bool, action: str, rng: Random) -> Reaction:
    """The borrower's answer to ``action`` (see the table in docs/strategies.md)."""
    if action in ("sms_reminder", "email"):
        if not reachable:
            return Reaction("sent")  # reminders to the unreachable do nothing
        return Reaction("sent", pays_in=_pays(_REMIND[profile], rng, 1, 3))
    if action in ("call_priority", "field_visit"):
        found = not reachable and action == "field_visit" and rng.random() < _FOUND
        if not (reachable or found):
            return Reaction("no_answer")
        if rng.random() < _HARDSHIP[profile]:
            return Reaction("hardship", found=found)
        if profile == DEFAULTER:
            return Reaction("refused", found=found)
        return Reaction("reached", pays_in=_pays(_CALL[profile], rng, 1, 3), found=found)
    if action == "restructure_offer":
        if reachable and rng.random() < _ACCEPT[profile]:
            after = OCCASIONAL if profile in (PARTIAL, CHRONIC) else None
            return Reaction("action_taken", restructure=True, becomes=after)
        return Reaction("action_refused")
    if action == "legal_referral":  # a letter from the lawyers reaches everyone
        pays = _pays(_LEGAL[profile], rng, 3, 15)
        settled = pays is not None and profile == DEFAULTER
        return Reaction("action_taken", pays_in=pays, becomes=OCCASIONAL if settled else None)
    if action == "agency_placement":
        found = not reachable and rng.random() < _FOUND
        if not (reachable or found):
            return Reaction("action_taken")
        return Reaction("action_taken", pays_in=_pays(_AGENCY[profile], rng, 5, 20), found=found)
    raise ValueError(f"unknown treatment action {action!r}")


def carry_out(ctx: Ctx, ln: Loan, action: str, d: int) -> Reaction | None:
    """Carry out ``action`` on day ``d``: log it, then apply the borrower's reaction."""
    if ln.flags & CLOSED:
        return None
    reachable = bool(ln.flags & FOUND) or not unreachable(ctx.cfg.seed, ln.bid)
    answer = reaction(ln.profile, reachable, action, draw_for(ctx.cfg.seed, ln.idx, d, action))
    fields = {
        "loan_id": loan_id(ln.idx),
        "channel": ACTION_CHANNELS[action],
        "outcome": answer.outcome,
        "action": action,
    }
    ctx.em.emit("contact_logged", ctx.next_time(), fields)
    ctx.stats[f"action_{action}"] += 1
    if answer.found:
        ln.flags |= FOUND
    cover_until(ctx.cal, ln, d)
    if days_past_due(ctx.cal, ln, d) == 0:
        return answer  # nothing owed any more: nothing to react to
    if answer.becomes is not None:
        ln.profile = answer.becomes
        ln.default_at = NEVER
    if answer.restructure:
        revise(ctx, ln, d, "restructure")
        ctx.stats["reaction_restructure"] += 1
    elif answer.pays_in is not None:
        _pay(ctx, ln, d + answer.pays_in)
    return answer


def _pay(ctx: Ctx, ln: Loan, day: int) -> None:
    """Arrange a payment of what is owed now on ``day`` (unless one is due sooner anyway)."""
    if ln.pay_day <= day or (ln.pay_kind in (PROMISE, TOKEN) and ln.pay_day < NEVER):
        return
    owed = owed_now(ln)
    if owed <= 0:
        return
    ln.pay_kind = PROMISE
    ln.pay_amt = owed
    ln.pay_day = day
    ctx.stats["reaction_payment"] += 1
