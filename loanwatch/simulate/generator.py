"""The event stream: a seeded, lazy, day-by-day simulation of a loan portfolio.

``generate(config)`` yields events in processing order: each business day starts with its
``clock_tick``, then the day's events sorted by local time (late arrivals and re-deliveries are
the deliberate exceptions). Only one day of activity is buffered; the loans opening that day are
produced lazily and merged in, so even the opening of a million-loan book on day one streams.
Loans are kept only while they still have something to do: an agenda maps each future day to
the loans that wake on it, so a day costs what its active loans cost, not the portfolio size.
"""

from __future__ import annotations

import heapq
from array import array
from collections import Counter
from collections.abc import Iterator

from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.context import Ctx, borrower_id, loan_id
from loanwatch.simulate.events import Emitted, Item
from loanwatch.simulate.faults import fault_count, inject
from loanwatch.simulate.loans import (
    CLOSED,
    NEVER,
    NO_FEE_FIELD,
    OMIT_ZERO_FEE,
    Loan,
    inst_total,
    schedule_rows,
    settle,
)
from loanwatch.simulate.payments import do_close, do_payment, do_reversal, plan
from loanwatch.simulate.products import (
    CURRENCY,
    PRODUCTS,
    REGIONS,
    draw_terms,
    format_cents,
    pick_product,
)
from loanwatch.simulate.profiles import (
    DEFAULTER,
    borrower_traits,
    default_after,
    migrated_arrears,
)
from loanwatch.simulate.recovery import do_collection
from loanwatch.simulate.respond import carry_out

_MIGRATION_WINDOW = (0, 6 * 3600)  # the existing book is loaded overnight on day one
_BUSINESS_HOURS = (9 * 3600, 21 * 3600)


class Simulation:
    """One run: iterate it once to get the events; ``stats`` counts what was produced."""

    def __init__(self, config: SimulationConfig, *, keep_loans: bool = False) -> None:
        self.config = config
        self.ctx = Ctx(config)
        self._agenda: dict[int, list[Loan]] = {}
        # The closed loop (``keep_loans``) reaches loans by number to hand them actions.
        self.loans: dict[int, Loan] | None = {} if keep_loans else None
        self._owners = self._assign_borrowers()
        self._migrated = round(config.loans * config.migrated_share)
        self._opened = 0

    @property
    def stats(self) -> Counter[str]:
        return self.ctx.stats

    def _assign_borrowers(self) -> array[int]:
        """Borrower number of each loan: most hold one loan, ``multi_loan_share`` hold 2-4."""
        rng, n = self.ctx.rng, self.config.loans
        owners: list[int] = []
        b = 0
        while len(owners) < n:
            k = rng.randint(2, 4) if rng.random() < self.config.multi_loan_share else 1
            owners.extend([b] * k)
            b += 1
        del owners[n:]
        rng.shuffle(owners)
        return array("q", owners)

    def _opened_by_end_of(self, d: int) -> int:
        cfg = self.config
        return self._migrated + (cfg.loans - self._migrated) * (d + 1) // cfg.days

    def __iter__(self) -> Iterator[Emitted]:
        for d in range(self.config.days):
            yield from self._day(d)

    def _day(self, d: int) -> Iterator[Emitted]:
        ctx = self.ctx
        ctx.em.day = d
        ctx.em.buffer = []
        yield ctx.em.clock_tick()
        for ln in self._agenda.pop(d, ()):
            if ln.wake_at == d:  # else a stale entry: the loan was moved to an earlier day
                self._wake(ln, d)
        lo, hi = self._opened, self._opened_by_end_of(d)
        self._opened = hi
        inject(ctx, fault_count(ctx, len(ctx.em.buffer) + hi - lo))
        buffer = ctx.em.buffer
        buffer.sort()  # (second, seq): seq is unique, items are never compared
        ctx.stats["events"] += len(buffer) + 1
        for item in heapq.merge(buffer, self._openings(d, lo, hi)):
            yield item[2]
        ctx.em.buffer = []

    def _schedule(self, ln: Loan, d: int) -> None:
        wake = ln.next_wake()
        if wake <= d:
            raise AssertionError(f"loan {ln.idx} planned day {wake} not after day {d}")
        ln.wake_at = wake
        if wake < self.config.days:
            self._agenda.setdefault(wake, []).append(ln)

    def act(self, idx: int, action: str) -> None:
        """Closed loop: carry out a treatment action on loan ``idx`` the next business day."""
        ln = self.loans.get(idx) if self.loans is not None else None
        if ln is None or ln.flags & CLOSED:
            return
        d = self.ctx.day + 1
        ln.acts = (*ln.acts, action)
        ln.act_day = d
        if d < ln.wake_at:  # file it under the earlier day; the old entry goes stale
            ln.wake_at = d
            if d < self.config.days:
                self._agenda.setdefault(d, []).append(ln)

    def _wake(self, ln: Loan, d: int) -> None:
        ctx = self.ctx
        ctx.begin_wake()
        if ln.act_day == d:
            acts, ln.acts, ln.act_day = ln.acts, (), NEVER
            for action in acts:
                carry_out(ctx, ln, action, d)
        if ln.rev_day == d:
            do_reversal(ctx, ln, d)
        if ln.pay_day == d:
            do_payment(ctx, ln, d)
        if ln.coll_day == d and not ln.flags & CLOSED:
            do_collection(ctx, ln, d)
        if ln.close_day == d and not ln.flags & CLOSED:
            do_close(ctx, ln, d)
        if not ln.flags & CLOSED:
            self._schedule(ln, d)

    def _openings(self, d: int, lo: int, hi: int) -> Iterator[Item]:
        """The day's new loans, in time order (migrated book overnight, then new business)."""
        split = min(hi, self._migrated) if d == 0 else lo
        yield from self._open_batch(d, lo, split, _MIGRATION_WINDOW, migrated=True)
        yield from self._open_batch(d, split, hi, _BUSINESS_HOURS, migrated=False)

    def _open_batch(
        self, d: int, lo: int, hi: int, window: tuple[int, int], *, migrated: bool
    ) -> Iterator[Item]:
        n = hi - lo
        t0, t1 = window
        span = t1 - t0
        gap = max(1, span // n) if n else 1
        for k in range(n):
            # Increasing times: slot k covers [t0 + k*span/n, t0 + (k+1)*span/n).
            sec = t0 + k * span // n + self.ctx.rng.randrange(gap)
            yield from self._open(lo + k, d, sec, migrated=migrated)
            self.ctx.stats["events"] += 1

    def _open(self, idx: int, d: int, sec: int, *, migrated: bool) -> Iterator[Item]:
        ctx = self.ctx
        rng, em = ctx.rng, ctx.em
        ln = self._new_loan(idx, d, migrated=migrated)
        rows, principal, total = schedule_rows(ctx.cal, ln)
        ln.cum_all = total
        lid = loan_id(idx)
        if not migrated and rng.random() < 2 * self.config.fault_rate:
            # An upfront first installment whose payment event overtakes the loan_opened.
            amount = inst_total(ln, 1)
            ln.pay_no = 1
            ln.paid = amount
            settle(ln)
            pay = {"loan_id": lid, "payment_id": f"{lid}-p1", "amount": format_cents(amount)}
            yield sec, em.next_seq(), em.make("payment_received", d, sec, pay)
            ctx.stats["fault_orphan"] += 1
            ctx.stats["events"] += 1
        fields: dict[str, object] = {
            "loan_id": lid,
            "borrower_id": borrower_id(ln.bid),
            "product": PRODUCTS[ln.product].name,
            "region": REGIONS[ln.region],
            "currency": CURRENCY,
            "principal": format_cents(principal),
            "installments": rows,
        }
        yield sec, em.next_seq(), em.make("loan_opened", d, sec, fields)
        ctx.stats["loan_opened"] += 1
        plan(ctx, ln, d)
        self._schedule(ln, d)

    def _new_loan(self, idx: int, d: int, *, migrated: bool) -> Loan:
        ctx = self.ctx
        rng, cal = ctx.rng, ctx.cal
        bid = self._owners[idx]
        profile, region = borrower_traits(self.config.seed, bid)
        if rng.random() < 0.1:  # booked at another region's branch
            region = rng.randrange(len(REGIONS))
        pi = pick_product(rng)
        product = PRODUCTS[pi]
        terms = draw_terms(rng, product)
        ln = Loan(idx, bid, pi, region, profile)
        if self.loans is not None:
            self.loans[idx] = ln
        ln.open_day = d
        ln.seg_p, ln.seg_n, ln.seg_rate = terms.principal, terms.tenor, terms.rate_bp
        ln.seg_fee, ln.seg_fee_every = terms.fee, terms.fee_every
        if not product.fees:
            ln.flags |= NO_FEE_FIELD
        elif rng.random() < 0.5:
            ln.flags |= OMIT_ZERO_FEE
        month, dom = cal.month_and_dom(d)
        if migrated:
            # Originated `age` months ago on day `due_dom`; the paid-off installments are gone,
            # and a troubled borrower may come with some installments already in arrears.
            age = rng.randint(0, terms.tenor - 1)
            due_dom = rng.randint(1, 28)
            before = max(0, age - 1) + (1 if age >= 1 and due_dom < dom else 0)
            arrears = min(migrated_arrears(rng, profile), before)
            ln.seg_m0, ln.seg_day, ln.seg_first = month - age, due_dom, before - arrears + 1
            if profile == DEFAULTER:
                ln.default_at = 1 if arrears else default_after(rng, ln.n_inst)
        else:
            ln.seg_m0, ln.seg_day, ln.seg_first = month, min(dom, 28), 1
            if profile == DEFAULTER:
                ln.default_at = default_after(rng, ln.n_inst)
        ln.pay_day = ln.coll_day = ln.close_day = ln.rev_day = NEVER
        return ln


def generate(config: SimulationConfig) -> Iterator[Emitted]:
    """The event log for ``config``, lazily, in processing order (dicts; bytes = bad lines)."""
    return iter(Simulation(config))
