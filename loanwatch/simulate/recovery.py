"""Collections on delinquent loans: contacts, promises to pay, risk signals, restructures,
extensions, write-offs and sales.

A collection visit only happens while the simulator's view shows the loan past due. A revised
schedule is always valid (seq 1..n, monthly due dates after today) and re-amortises exactly the
principal of the installments it replaces, as SPEC section 3 removes them.
"""

from __future__ import annotations

from loanwatch.simulate.context import Ctx, loan_id
from loanwatch.simulate.loans import (
    NEVER,
    PROMISE,
    RESTRUCTURED,
    TOKEN,
    Loan,
    cover_until,
    days_past_due,
    inst_principal,
    owed_now,
    schedule_rows,
    settle,
)
from loanwatch.simulate.payments import in_default, plan, signal
from loanwatch.simulate.products import PRODUCTS, format_cents
from loanwatch.simulate.profiles import (
    CHRONIC,
    DEFAULTER,
    OCCASIONAL,
    PARTIAL,
    PROMISE_KEPT,
    default_after,
)

# words of loanwatch/ledger/contact_outcomes.py (the compliance rules count them)
OUTCOMES: tuple[str, ...] = ("reached", "no_answer", "left_message", "refused", "wrong_number")
_EARLY = ("sms", "sms", "sms", "sms", "sms", "call", "call", "email")
_MIDDLE = ("call", "call", "call", "sms", "sms", "email", "letter")
_LATE = ("call", "call", "visit", "visit", "letter", "letter", "sms")
_SIGNALS_MEDIUM = ("bureau_score_drop", "income_stopped")
_SIGNALS_HIGH = ("litigation", "account_frozen", "income_stopped")


def _channel(ctx: Ctx, dpd: int) -> str:
    pool = _EARLY if dpd <= 7 else _MIDDLE if dpd <= 60 else _LATE
    return pool[ctx.rng.randrange(len(pool))]


def do_collection(ctx: Ctx, ln: Loan, d: int) -> None:
    """One collection step on day d; schedules the next one while the loan stays past due."""
    rng = ctx.rng
    ln.coll_day = NEVER
    cover_until(ctx.cal, ln, d)
    dpd = days_past_due(ctx.cal, ln, d)
    if dpd == 0:
        return
    if (dpd >= 360 and rng.random() < 0.35) or (dpd >= 180 and rng.random() < 0.04):
        ctx.close(ln, "written_off")
        return
    if dpd >= 90 and rng.random() < 0.006:
        ctx.close(ln, "sold")
        return
    action = _choose_action(ctx, ln, dpd, d)
    outcome = "promised" if action == "promise" else OUTCOMES[rng.randrange(len(OUTCOMES))]
    if action in ("restructure", "extension"):
        outcome = "reached"
    channel = _channel(ctx, dpd)
    fields: dict[str, object] = {"loan_id": loan_id(ln.idx), "channel": channel, "outcome": outcome}
    if channel in ("call", "visit") or rng.random() < 0.3:
        fields["collector_id"] = f"C{rng.randint(1, 400):04d}"
    ctx.em.emit("contact_logged", ctx.next_time(), fields, late_after=ln.open_day)
    ctx.stats["contact"] += 1
    _maybe_signal(ctx, ln, dpd)
    if action == "promise":
        _promise(ctx, ln, d)
    elif action in ("restructure", "extension"):
        revise(ctx, ln, d, action)
    elif action == "token":
        ln.pay_kind = TOKEN
        ln.pay_amt = max(100_00, owed_now(ln) * rng.randint(5, 30) // 100 // 100 * 100)
        ln.pay_day = d + rng.randint(1, 5)
    ln.coll_day = d + (rng.randint(3, 10) if dpd < 30 else rng.randint(7, 30))


def _choose_action(ctx: Ctx, ln: Loan, dpd: int, d: int) -> str:
    rng = ctx.rng
    arranged = ln.pay_kind in (PROMISE, TOKEN) and ln.pay_day < NEVER
    if ln.rev_day == NEVER and not arranged:
        if dpd >= 60 and not ln.flags & RESTRUCTURED and rng.random() < 0.08:
            return "restructure"
        if 15 <= dpd < 60 and ln.profile in (PARTIAL, CHRONIC, OCCASIONAL) and rng.random() < 0.03:
            return "extension"
    if not arranged and d > ln.promise_until and rng.random() < 0.3:
        return "promise"
    if not arranged and in_default(ln) and rng.random() < 0.1:
        return "token"
    return "none"


def _maybe_signal(ctx: Ctx, ln: Loan, dpd: int) -> None:
    rng = ctx.rng
    if rng.random() < 0.04:
        if dpd >= 90:
            signal(ctx, ln, _SIGNALS_HIGH[rng.randrange(3)], "high", borrower_level=True)
        elif dpd >= 30:
            signal(ctx, ln, _SIGNALS_MEDIUM[rng.randrange(2)], "medium", borrower_level=True)
        else:
            signal(ctx, ln, "bureau_score_drop", "low", borrower_level=True)
    if PRODUCTS[ln.product].name == "sme" and dpd >= 30 and rng.random() < 0.05:
        severity = "high" if dpd >= 90 else "medium"
        signal(ctx, ln, "covenant_breach", severity, borrower_level=False)


def _promise(ctx: Ctx, ln: Loan, d: int) -> None:
    rng = ctx.rng
    owed = owed_now(ln)
    if owed <= 0:
        return
    amount = owed
    if rng.random() < 0.4:
        amount = min(owed, max(100_00, owed * rng.randint(30, 80) // 100 // 100 * 100))
    promised = d + rng.randint(2, 10)
    ln.ptp_no += 1
    lid = loan_id(ln.idx)
    fields = {
        "loan_id": lid,
        "promise_id": f"{lid}-ptp{ln.ptp_no}",
        "amount": format_cents(amount),
        "promised_date": ctx.cal.iso(promised),
    }
    ctx.em.emit("promise_to_pay", ctx.next_time(), fields)
    ln.promise_until = promised
    if rng.random() < PROMISE_KEPT[ln.profile]:
        ctx.stats["promise_kept"] += 1
        ln.pay_kind = PROMISE
        ln.pay_amt = amount
        ln.pay_day = d + rng.randint(1, promised - d)
    else:
        ctx.stats["promise_broken"] += 1
        if ln.pay_day < NEVER:  # whatever they meant to pay comes only after the promised date
            ln.pay_day = max(ln.pay_day, promised + rng.randint(3, 20))


def revise(ctx: Ctx, ln: Loan, d: int, reason: str) -> None:
    """Replace every unpaid installment by a longer schedule starting next month."""
    rng, cal = ctx.rng, ctx.cal
    n = ln.n_inst
    replaced = sum(inst_principal(ln, j) for j in range(ln.n_full + 1, n + 1))
    if replaced <= 0:
        return
    extra = rng.randint(6, 24) if reason == "restructure" else rng.randint(3, 12)
    month, dom = cal.month_and_dom(d)
    ln.base_cum = ln.cum_full
    ln.seg_p = replaced
    ln.seg_n = min(n - ln.n_full + extra, 480, replaced)
    ln.seg_first = 1
    ln.seg_m0 = month
    ln.seg_day = min(dom, 28)
    if reason == "restructure":
        ln.seg_rate = max(100, ln.seg_rate * 4 // 5 // 5 * 5)
        ln.flags |= RESTRUCTURED
    ln.n_full = ln.n_cov = 0
    ln.cum_cov = ln.cum_full
    rows, _, total = schedule_rows(cal, ln)
    ln.cum_all = ln.base_cum + total
    settle(ln)  # what was paid on the replaced installments is credit for the new ones
    lid = loan_id(ln.idx)
    fields = {"loan_id": lid, "reason": reason, "installments": rows}
    ctx.em.emit("schedule_revised", ctx.next_time(), fields)
    ctx.stats[f"revised_{reason}"] += 1
    if ln.profile == DEFAULTER:
        if rng.random() < 0.5:  # the restructure worked: a late payer, no longer a defaulter
            ln.profile = CHRONIC if rng.random() < 0.5 else OCCASIONAL
            ln.default_at = NEVER
        else:
            ln.default_at = default_after(rng, ln.n_inst)
    ln.pay_day = NEVER
    plan(ctx, ln, d)
