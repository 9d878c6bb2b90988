"""Payment behaviour: when a borrower pays, how much, reversals and the repaid close.

Amounts always target what the simulator's own view says is due (``loans.owed_now``); only a
deliberate overpayment on a loan's final payment ever exceeds what is owed. Every planned day is
strictly after the current one, so a loan wakes at most once a day.
"""

from __future__ import annotations

from loanwatch.simulate.context import Ctx, borrower_id, loan_id
from loanwatch.simulate.loans import (
    CLOSED,
    NEVER,
    PAYOFF,
    PROMISE,
    REGULAR,
    TOKEN,
    Loan,
    cover_until,
    inst_due,
    owed_now,
    remaining,
    settle,
)
from loanwatch.simulate.products import format_cents
from loanwatch.simulate.profiles import DEFAULTER, OCCASIONAL, ON_TIME, payment_delay, payment_share

PAY_CHANNELS: tuple[str, ...] = (
    "bank_transfer",
    "app",
    "wechat",
    "alipay",
    "auto_debit",
    "counter",
)
REVERSAL_REASONS: tuple[str, ...] = ("insufficient_funds", "chargeback", "bank_error")


def in_default(ln: Loan) -> bool:
    """A defaulter who has reached the installment they stop paying at."""
    return ln.profile == DEFAULTER and ln.n_full + 1 >= ln.default_at


def plan(ctx: Ctx, ln: Loan, d: int) -> None:
    """Decide the loan's next regular payment (or its close) after its state changed on day d."""
    if ln.flags & CLOSED or (ln.pay_kind in (PROMISE, TOKEN) and d < ln.pay_day < NEVER):
        return  # a promised or token payment is already arranged
    rng, cal = ctx.rng, ctx.cal
    cover_until(cal, ln, d)
    ln.pay_kind = REGULAR
    if ln.n_full >= ln.n_inst:
        ln.pay_day = ln.coll_day = NEVER
        if ln.close_day == NEVER:
            after = ln.rev_day if ln.rev_day != NEVER else d
            ln.close_day = after + rng.randint(1, 5)
        return
    ln.close_day = NEVER
    due = inst_due(cal, ln, ln.n_full + 1)
    if in_default(ln):
        ln.pay_day = NEVER
        if ln.coll_day == NEVER:
            ln.coll_day = max(d + 1, due + rng.randint(3, 15))
        return
    ref = due
    if due <= d:  # still behind after today's activity: pay again around the next due date
        ref = inst_due(cal, ln, ln.n_cov + 1) if ln.n_cov < ln.n_inst else d + rng.randint(5, 30)
    if ln.profile in (ON_TIME, OCCASIONAL) and rng.random() < 0.004:
        ln.pay_kind = PAYOFF
    ln.pay_day = max(d + 1, ref + payment_delay(rng, ln.profile))
    if ln.pay_day > due + 2 and ln.coll_day == NEVER:
        ln.coll_day = max(d + 1, due + rng.randint(3, 10))


def _amount(ctx: Ctx, ln: Loan) -> int:
    rng = ctx.rng
    kind = ln.pay_kind
    rest = remaining(ln)
    if kind in (PROMISE, TOKEN):
        return min(ln.pay_amt, rest)
    if kind == PAYOFF:
        return rest
    if ln.n_cov == ln.n_full and ln.n_cov < ln.n_inst:
        # Paying ahead of the due date: the target is the coming installment.
        cover_until(ctx.cal, ln, inst_due(ctx.cal, ln, ln.n_cov + 1))
    owed = owed_now(ln)
    share = payment_share(rng, ln.profile)
    if share < 100:
        amount = owed * share // 100 // 100 * 100 or owed
    elif rng.random() < 0.08:
        amount = -(-owed // 10_000) * 10_000  # rounded up to the next 100 yuan
    else:
        amount = owed
    return min(amount, rest)


def do_payment(ctx: Ctx, ln: Loan, d: int) -> None:
    rng = ctx.rng
    kind = ln.pay_kind
    cover_until(ctx.cal, ln, d)
    amount = _amount(ctx, ln)
    ln.pay_day = NEVER
    ln.pay_kind = REGULAR
    if amount > 0 and amount == remaining(ln) and rng.random() < ctx.cfg.overpay_rate:
        amount += rng.randint(1, 5_000)
        ctx.stats["overpayment"] += 1
    if amount <= 0:
        plan(ctx, ln, d)
        return
    ln.pay_no += 1
    lid = loan_id(ln.idx)
    fields: dict[str, object] = {
        "loan_id": lid,
        "payment_id": f"{lid}-p{ln.pay_no}",
        "amount": format_cents(amount),
    }
    if rng.random() < 0.85:
        fields["channel"] = PAY_CHANNELS[rng.randrange(len(PAY_CHANNELS))]
    late_after = ln.open_day if kind == REGULAR else -1
    ctx.em.emit("payment_received", ctx.next_time(), fields, late_after=late_after)
    ctx.stats["payment"] += 1
    ln.paid += amount
    settle(ln)
    if kind in (REGULAR, PAYOFF) and ln.rev_day == NEVER and rng.random() < ctx.cfg.reversal_rate:
        ln.rev_day = d + rng.randint(1, 6)
        ln.rev_no = ln.pay_no
        ln.rev_amt = amount
    if rng.random() < 0.002:
        signal(ctx, ln, "bureau_score_drop", "low", borrower_level=True)
    plan(ctx, ln, d)


def do_reversal(ctx: Ctx, ln: Loan, d: int) -> None:
    lid = loan_id(ln.idx)
    reason = REVERSAL_REASONS[ctx.rng.randrange(len(REVERSAL_REASONS))]
    fields = {"loan_id": lid, "payment_id": f"{lid}-p{ln.rev_no}", "reason": reason}
    ctx.em.emit("payment_reversed", ctx.next_time(), fields)
    ctx.stats["reversal"] += 1
    ln.paid -= ln.rev_amt
    ln.rev_day = NEVER
    ln.rev_amt = 0
    settle(ln)
    ln.close_day = NEVER
    plan(ctx, ln, d)


def do_close(ctx: Ctx, ln: Loan, d: int) -> None:
    ln.close_day = NEVER
    if ln.paid >= ln.cum_all and ln.rev_day == NEVER:
        ctx.close(ln, "repaid")
    else:
        plan(ctx, ln, d)


def signal(ctx: Ctx, ln: Loan, name: str, severity: str, *, borrower_level: bool) -> None:
    """A risk signal about this loan's borrower (all their loans) or about this loan only."""
    fields: dict[str, object] = (
        {"borrower_id": borrower_id(ln.bid)} if borrower_level else {"loan_id": loan_id(ln.idx)}
    )
    fields["signal"] = name
    fields["severity"] = severity
    if ctx.rng.random() < 0.5:
        fields["detail"] = f"source=bureau;ref={ctx.rng.randrange(10**6):06d}"
    ctx.em.emit("risk_signal", ctx.next_time(), fields)
    ctx.stats["risk_signal"] += 1
