"""Deliberately bad and duplicated events, the way real feeds go wrong.

Each fault is inserted into the current day's buffer at a random time. None of them changes the
simulator's own view of a loan: they are all events the engine must dead-letter (or ignore, for
exact re-deliveries), so the rest of the stream stays consistent. Orphan payments (a payment
that arrives before its ``loan_opened``) are produced where loans open, in ``generator``.
"""

from __future__ import annotations

import orjson

from loanwatch.simulate.context import Ctx
from loanwatch.simulate.events import DAY_SECONDS, Event

KINDS: tuple[str, ...] = (
    "malformed_json",
    "number_amount",
    "three_decimals",
    "negative_amount",
    "missing_field",
    "unknown_type",
    "unknown_payment",
    "never_opened",
    "after_closed",
    "duplicate",
)
_NEEDS_LOAN = frozenset(
    {"number_amount", "three_decimals", "negative_amount", "missing_field", "unknown_type",
     "unknown_payment"}
)  # fmt: skip
_UNKNOWN_TYPES = ("loan_exploded", "interest_accrued", "payment_refunded")


def fault_count(ctx: Ctx, good: int) -> int:
    """How many faults to add to a day with ``good`` events, rounded stochastically."""
    rate = ctx.cfg.fault_rate
    expected = good * rate / (1.0 - rate)
    whole = int(expected)
    return whole + (1 if ctx.rng.random() < expected - whole else 0)


def _target_loan(ctx: Ctx, good: int) -> str | None:
    """A loan active today (it has a good event in today's buffer), if one is found quickly."""
    buf = ctx.em.buffer
    for _ in range(4 if good else 0):
        ev = buf[ctx.rng.randrange(good)][2]
        if isinstance(ev, dict) and ev["type"] != "loan_closed" and "loan_id" in ev:
            return str(ev["loan_id"])
    return None


def _closed_loan(ctx: Ctx) -> str | None:
    ring = ctx.closed
    if ring:
        lid, day = ring[ctx.rng.randrange(len(ring))]
        if day < ctx.day:
            return lid
    return None


def inject(ctx: Ctx, count: int) -> None:
    """Add ``count`` faults of random kinds to today's buffer."""
    em, rng = ctx.em, ctx.rng
    good = len(em.buffer)
    for _ in range(count):
        kind = KINDS[rng.randrange(len(KINDS))]
        sec = rng.randrange(DAY_SECONDS)
        lid = _target_loan(ctx, good) if kind in _NEEDS_LOAN else None
        if kind in _NEEDS_LOAN and lid is None:
            kind = "never_opened"
        if kind == "after_closed":
            lid = _closed_loan(ctx)
            if lid is None:
                kind = "never_opened"
        if kind == "duplicate":
            if not good:
                kind = "malformed_json"
            else:
                src_sec, _, src = em.buffer[rng.randrange(good)]
                if isinstance(src, dict):  # re-delivered later the same day, same event_id
                    at = min(DAY_SECONDS - 1, src_sec + rng.randint(1, 7_200))
                    em.buffer.append((at, em.next_seq(), src))
                    ctx.stats["fault_duplicate"] += 1
                    continue
                kind = "malformed_json"
        item = _build(ctx, kind, sec, lid)
        em.buffer.append((sec, em.next_seq(), item))
        ctx.stats[f"fault_{kind}"] += 1


def _payment(ctx: Ctx, lid: str, sec: int, amount: object) -> Event:
    n = ctx.rng.randrange(10**6)
    fields = {"loan_id": lid, "payment_id": f"{lid}-x{n}", "amount": amount}
    return ctx.em.make("payment_received", ctx.day, sec, fields)


def _build(ctx: Ctx, kind: str, sec: int, lid: str | None) -> Event | bytes:
    rng = ctx.rng
    loan = lid or f"LX{rng.randrange(10**7):07d}"
    whole = rng.randint(1, 99_999)
    if kind == "malformed_json":
        raw = orjson.dumps(_payment(ctx, loan, sec, f"{whole}.00"))
        return raw[: rng.randint(5, len(raw) - 2)]
    if kind == "number_amount":
        return _payment(ctx, loan, sec, whole / 100 if rng.random() < 0.7 else whole)
    if kind == "three_decimals":
        return _payment(ctx, loan, sec, f"{whole}.{rng.randint(0, 99):02d}{rng.randint(1, 9)}")
    if kind == "negative_amount":
        return _payment(ctx, loan, sec, f"-{whole}.{rng.randint(0, 99):02d}")
    if kind == "missing_field":
        ev = _payment(ctx, loan, sec, f"{whole}.00")
        del ev[("payment_id", "amount", "loan_id")[rng.randrange(3)]]
        return ev
    if kind == "unknown_type":
        etype = _UNKNOWN_TYPES[rng.randrange(len(_UNKNOWN_TYPES))]
        return ctx.em.make(etype, ctx.day, sec, {"loan_id": loan})
    if kind == "unknown_payment":
        fields = {"loan_id": loan, "payment_id": f"{loan}-x{rng.randrange(10**6)}",
                  "reason": "bank_error"}  # fmt: skip
        return ctx.em.make("payment_reversed", ctx.day, sec, fields)
    if kind == "after_closed" and rng.random() < 0.4:
        fields = {"loan_id": loan, "channel": "sms", "outcome": "no_answer"}
        return ctx.em.make("contact_logged", ctx.day, sec, fields)
    # never_opened, after_closed: a well-formed payment for a loan the engine cannot accept
    return _payment(ctx, loan, sec, f"{whole}.00")
