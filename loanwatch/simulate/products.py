"""Loan products and regions of the simulated book, and how their terms are drawn.

Money is integer cents everywhere in the simulator; ``format_cents`` is the only way an amount
becomes a wire string. Nothing here touches floats for money (rates are integer basis points).
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

REGIONS: tuple[str, ...] = ("east", "north", "south", "west", "central")
CURRENCY = "CNY"


@dataclass(frozen=True, slots=True)
class Product:
    """A product's ranges: principal in cents, monthly tenors, annual rate in basis points."""

    name: str
    weight: float
    principal_min: int
    principal_max: int
    principal_step: int
    tenors: tuple[int, ...]
    rate_bp_min: int
    rate_bp_max: int
    fees: tuple[int, ...]
    """Per-installment service fees (cents) to choose from; empty: the product has no fee."""
    fee_every: tuple[int, ...]
    """A fee is charged on installments 1, 1+k, 1+2k, ...; k larger than the tenor: once."""


PRODUCTS: tuple[Product, ...] = (
    Product(
        "consumer",
        0.46,
        2_000_00,
        80_000_00,
        100_00,
        (3, 6, 12, 24),
        800,
        2400,
        (500, 1000, 2000, 3000),
        (1, 3),
    ),
    Product(
        "auto",
        0.20,
        50_000_00,
        400_000_00,
        1_000_00,
        (12, 24, 36, 60),
        450,
        900,
        (5000, 10000),
        (1000,),
    ),
    Product(
        "sme",
        0.22,
        100_000_00,
        3_000_000_00,
        10_000_00,
        (6, 12, 24, 36),
        400,
        1200,
        (20000, 50000, 100000),
        (12, 1000),
    ),
    Product(
        "mortgage",
        0.12,
        300_000_00,
        5_000_000_00,
        10_000_00,
        (60, 120, 240, 360),
        300,
        550,
        (),
        (1,),
    ),
)
_CUM_WEIGHTS: tuple[float, ...] = tuple(
    sum(p.weight for p in PRODUCTS[: i + 1]) for i in range(len(PRODUCTS))
)


def pick_product(rng: Random) -> int:
    """Index into ``PRODUCTS`` drawn by product weight."""
    u = rng.random() * _CUM_WEIGHTS[-1]
    for i, edge in enumerate(_CUM_WEIGHTS):
        if u < edge:
            return i
    return len(PRODUCTS) - 1


@dataclass(frozen=True, slots=True)
class Terms:
    """The drawn terms of one new loan."""

    principal: int
    tenor: int
    rate_bp: int
    fee: int
    fee_every: int


def draw_terms(rng: Random, product: Product) -> Terms:
    """Draw principal (a round amount), tenor, rate and fee plan for a new loan."""
    steps = (product.principal_max - product.principal_min) // product.principal_step
    # Small loans are more common than large ones: take the smaller of two draws.
    k = min(rng.randint(0, steps), rng.randint(0, steps))
    principal = product.principal_min + k * product.principal_step
    tenor = product.tenors[rng.randrange(len(product.tenors))]
    rate = rng.randint(product.rate_bp_min // 5, product.rate_bp_max // 5) * 5
    fee = product.fees[rng.randrange(len(product.fees))] if product.fees else 0
    every = product.fee_every[rng.randrange(len(product.fee_every))]
    return Terms(principal, tenor, rate, fee, every)


def format_cents(cents: int) -> str:
    """Integer cents as a wire amount with two decimals (``123456`` -> ``"1234.56"``)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"
