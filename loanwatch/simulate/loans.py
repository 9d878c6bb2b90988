"""The simulator's own compact view of one loan, and the schedule arithmetic behind it.

This is NOT the ledger (it never imports ``loanwatch.ledger``): it is just enough bookkeeping to
decide realistic payment amounts. A loan's current schedule is a *segment* of an amortising loan
(principal ``seg_p`` over ``seg_n`` months, equal principal parts, interest on the declining
balance) starting at original installment ``seg_first``; installments are numbered ``j`` = 1..
``n_inst`` inside the segment. Installments are never stored: they are computed on demand, so
the state stays a few dozen integers per loan. Days are indices from the simulation start.
"""

from __future__ import annotations

from datetime import date

NEVER = 1 << 30

# pay_kind values
REGULAR = 0
PAYOFF = 1
PROMISE = 2
TOKEN = 3

# flag bits
OMIT_ZERO_FEE = 1
NO_FEE_FIELD = 2
RESTRUCTURED = 4
CLOSED = 8
FOUND = 16  # an unreachable borrower found by a visit or an agency (simulate/respond.py)


class Loan:
    """Mutable per-loan simulator state; integer cents and day indices only."""

    __slots__ = (
        "act_day", "acts", "base_cum", "bid", "close_day", "coll_day", "cum_all", "cum_cov",
        "cum_full", "default_at", "flags", "idx", "n_cov", "n_full", "open_day", "paid", "pay_amt",
        "pay_day", "pay_kind", "pay_no", "product", "profile", "promise_until", "ptp_no",
        "region", "rev_amt", "rev_day", "rev_no", "seg_day", "seg_fee", "seg_fee_every",
        "seg_first", "seg_m0", "seg_n", "seg_p", "seg_rate", "wake_at",
    )  # fmt: skip

    def __init__(self, idx: int, bid: int, product: int, region: int, profile: int) -> None:
        self.idx = idx
        self.bid = bid
        self.product = product
        self.region = region
        self.profile = profile
        self.flags = 0
        self.open_day = 0
        self.seg_p = self.seg_n = self.seg_first = self.seg_rate = 0
        self.seg_m0 = self.seg_day = self.seg_fee = self.seg_fee_every = 0
        self.base_cum = self.cum_all = self.paid = 0
        self.n_full = self.cum_full = self.n_cov = self.cum_cov = 0
        self.pay_no = self.ptp_no = 0
        self.pay_day = self.rev_day = self.coll_day = self.close_day = NEVER
        self.pay_kind = REGULAR
        self.pay_amt = self.rev_no = self.rev_amt = 0
        self.default_at = NEVER
        self.promise_until = -NEVER
        # Closed loop only (loanwatch.simulate.respond): treatment actions to carry out on
        # act_day; without strategies act_day stays NEVER and acts empty.
        self.act_day = NEVER
        self.acts: tuple[str, ...] = ()
        self.wake_at = NEVER  # the agenda day the loan is filed under (older entries are stale)

    @property
    def n_inst(self) -> int:
        return self.seg_n - self.seg_first + 1

    def next_wake(self) -> int:
        return min(self.pay_day, self.rev_day, self.coll_day, self.close_day, self.act_day)


class Calendar:
    """Converts between day indices and month-based due dates for one simulation start."""

    __slots__ = ("_day_of", "_iso", "start_ord")

    def __init__(self, start: date) -> None:
        self.start_ord = start.toordinal()
        self._iso: dict[int, str] = {}
        self._day_of: dict[int, int] = {}

    def day_of(self, month_index: int, dom: int) -> int:
        key = month_index * 32 + dom
        day = self._day_of.get(key)
        if day is None:
            y, m = divmod(month_index, 12)
            day = self._day_of[key] = date(y, m + 1, dom).toordinal() - self.start_ord
        return day

    def month_and_dom(self, day: int) -> tuple[int, int]:
        d = date.fromordinal(self.start_ord + day)
        return d.year * 12 + d.month - 1, d.day

    def iso(self, day: int) -> str:
        s = self._iso.get(day)
        if s is None:
            s = self._iso[day] = date.fromordinal(self.start_ord + day).isoformat()
        return s


def inst_principal(ln: Loan, j: int) -> int:
    i = ln.seg_first + j - 1
    base = ln.seg_p // ln.seg_n
    return base + (ln.seg_p - base * ln.seg_n if i == ln.seg_n else 0)


def inst_interest(ln: Loan, j: int) -> int:
    i = ln.seg_first + j - 1
    outstanding = ln.seg_p - (ln.seg_p // ln.seg_n) * (i - 1)
    return (outstanding * ln.seg_rate + 60_000) // 120_000  # annual bp / 12 months, half up


def inst_fee(ln: Loan, j: int) -> int:
    i = ln.seg_first + j - 1
    return ln.seg_fee if ln.seg_fee and (i - 1) % ln.seg_fee_every == 0 else 0


def inst_total(ln: Loan, j: int) -> int:
    return inst_principal(ln, j) + inst_interest(ln, j) + inst_fee(ln, j)


def inst_due(cal: Calendar, ln: Loan, j: int) -> int:
    return cal.day_of(ln.seg_m0 + ln.seg_first + j - 1, ln.seg_day)


def cover_until(cal: Calendar, ln: Loan, day: int) -> None:
    """Count every installment due on or before ``day`` as owed now."""
    n = ln.n_inst
    while ln.n_cov < n and inst_due(cal, ln, ln.n_cov + 1) <= day:
        ln.n_cov += 1
        ln.cum_cov += inst_total(ln, ln.n_cov)


def settle(ln: Loan) -> None:
    """Move the fully-paid pointer after ``paid`` changed (payments go oldest first)."""
    n = ln.n_inst
    while ln.n_full < n:
        t = inst_total(ln, ln.n_full + 1)
        if ln.cum_full + t > ln.paid:
            break
        ln.n_full += 1
        ln.cum_full += t
    while ln.cum_full > ln.paid:  # after a reversal
        ln.cum_full -= inst_total(ln, ln.n_full)
        ln.n_full -= 1
    if ln.n_cov < ln.n_full:
        ln.n_cov, ln.cum_cov = ln.n_full, ln.cum_full


def owed_now(ln: Loan) -> int:
    return max(0, ln.cum_cov - ln.paid)


def remaining(ln: Loan) -> int:
    return max(0, ln.cum_all - ln.paid)


def days_past_due(cal: Calendar, ln: Loan, day: int) -> int:
    if ln.n_full >= ln.n_inst:
        return 0
    due = inst_due(cal, ln, ln.n_full + 1)
    return day - due if due < day else 0


def schedule_rows(cal: Calendar, ln: Loan) -> tuple[list[dict[str, object]], int, int]:
    """The current segment as wire installments, with its principal and grand total (cents).

    The hot path of a big run (a mortgage has up to 360 rows): the arithmetic of
    ``inst_principal``/``inst_interest``/``inst_fee`` is inlined here and must stay identical.
    """
    rows: list[dict[str, object]] = []
    p0, n0, first, rate = ln.seg_p, ln.seg_n, ln.seg_first, ln.seg_rate
    fee, every, m0, dom = ln.seg_fee, ln.seg_fee_every, ln.seg_m0, ln.seg_day
    base = p0 // n0
    base_text = _fmt(base)
    with_fee = not ln.flags & NO_FEE_FIELD
    keep_zero = not ln.flags & OMIT_ZERO_FEE
    principal = total = 0
    for j, i in enumerate(range(first, n0 + 1), start=1):
        p = base + p0 - base * n0 if i == n0 else base
        r = ((p0 - base * (i - 1)) * rate + 60_000) // 120_000
        f = fee if fee and (i - 1) % every == 0 else 0
        principal += p
        total += p + r + f
        y, m = divmod(m0 + i, 12)
        row: dict[str, object] = {
            "seq": j,
            "due_date": f"{y:04d}-{m + 1:02d}-{dom:02d}",
            "principal": base_text if p == base else _fmt(p),
            "interest": _fmt(r),
        }
        if with_fee and (f or keep_zero):
            row["fee"] = _fmt(f)
        rows.append(row)
    return rows, principal, total


def _fmt(cents: int) -> str:
    return "%d.%02d" % divmod(cents, 100)  # noqa: UP031 - the fastest form, cents >= 0
