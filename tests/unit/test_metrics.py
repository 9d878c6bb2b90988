"""The metric catalog and the portfolio collector against a real, fresh registry."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from loanwatch.ledger.view import LoanView
from loanwatch.metrics import (
    BUCKETS,
    CLASSES,
    STAGES,
    PortfolioCollector,
    register_pipeline_metrics,
)

from ..views import loan_view

pytestmark = pytest.mark.unit

BASE = loan_view()


def view(**changes: object) -> LoanView:
    return replace(BASE, **changes)  # type: ignore[arg-type]


def collected(views: list[LoanView]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PortfolioCollector(lambda: views))
    return registry


def test_pipeline_metrics_register_on_the_given_registry_only() -> None:
    registry = CollectorRegistry()
    metrics = register_pipeline_metrics(registry)
    metrics.events.labels(topic="loan.payments", type="payment_received", result="applied").inc()
    metrics.payment_amount.labels(product="consumer", region="east", currency="CNY").inc(12.5)
    metrics.event_time_lag.observe(0.3)
    metrics.business_date.set(1_772_640_000)

    labels = {"topic": "loan.payments", "type": "payment_received", "result": "applied"}
    assert registry.get_sample_value("loanwatch_events_total", labels) == 1.0
    assert (
        registry.get_sample_value(
            "loanwatch_payment_amount_total",
            {"product": "consumer", "region": "east", "currency": "CNY"},
        )
        == 12.5
    )
    assert registry.get_sample_value("loanwatch_event_time_lag_seconds_count") == 1.0
    assert registry.get_sample_value("loanwatch_business_date_timestamp_seconds") == 1_772_640_000
    # A second, independent registry starts from nothing.
    other = CollectorRegistry()
    register_pipeline_metrics(other)
    assert other.get_sample_value("loanwatch_events_total", labels) is None


def test_registering_twice_on_one_registry_fails_loudly() -> None:
    registry = CollectorRegistry()
    register_pipeline_metrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        register_pipeline_metrics(registry)


def test_every_pipeline_metric_name_is_exposed() -> None:
    registry = CollectorRegistry()
    register_pipeline_metrics(registry)
    names = {family.name for family in registry.collect()}
    assert names == {
        "loanwatch_events",
        "loanwatch_dead_letters",
        "loanwatch_alerts",
        "loanwatch_bucket_transitions",
        "loanwatch_cures",
        "loanwatch_promises",
        "loanwatch_payments",
        "loanwatch_payment_amount",
        "loanwatch_contacts",
        "loanwatch_event_time_lag_seconds",
        "loanwatch_alert_latency_seconds",
        "loanwatch_batch_size",
        "loanwatch_batch_processing_seconds",
        "loanwatch_input_held_messages",
        "loanwatch_alignment_forced",
        "loanwatch_alignment_gaps",
        "loanwatch_alignment_gaps_accepted",
        "loanwatch_alignment_resumed",
        "loanwatch_rebalances",
        "loanwatch_assigned_partitions",
        "loanwatch_consumer_lag_messages",
        "loanwatch_business_date_timestamp_seconds",
        "loanwatch_last_event_timestamp_seconds",
        "loanwatch_audit_records",
        "loanwatch_audit_bytes",
        "loanwatch_audit_seconds",
        "loanwatch_audit_rereads_skipped",
        "loanwatch_audit_forks",
    }


def test_every_early_warning_metric_name_is_exposed() -> None:
    from loanwatch.metrics.early_warning import register_early_warning_metrics

    registry = CollectorRegistry()
    metrics = register_early_warning_metrics(registry)
    assert {family.name for family in registry.collect()} == {
        "loanwatch_ew_score_probability",
        "loanwatch_ew_pre_due_alerts",
    }
    metrics.probability.labels(bucket="M1", product="consumer").observe(0.35)
    metrics.pre_due_alerts.labels(reason_code="late_1>3").inc()
    labels = {"bucket": "M1", "product": "consumer"}
    assert registry.get_sample_value("loanwatch_ew_score_probability_count", labels) == 1.0
    le = {**labels, "le": "0.3"}
    assert registry.get_sample_value("loanwatch_ew_score_probability_bucket", le) == 0.0
    assert (
        registry.get_sample_value("loanwatch_ew_pre_due_alerts_total", {"reason_code": "late_1>3"})
        == 1.0
    )


def test_portfolio_sums_active_loans_exactly_by_bucket() -> None:
    views = [
        view(loan_id="a", outstanding_principal=Decimal("0.10")),
        view(loan_id="b", outstanding_principal=Decimal("0.20")),
        view(
            loan_id="c",
            dpd=45,
            bucket="M2",
            overdue_amount=Decimal("300.33"),
            outstanding_principal=Decimal("900.01"),
            classification="special_mention",
            ifrs9_stage=2,
        ),
        view(loan_id="d", status="closed", outstanding_principal=Decimal("5000.00")),
        view(loan_id="e", status="written_off", bucket="M7+", classification="loss"),
    ]
    registry = collected(views)
    m0 = {"product": "consumer", "region": "east", "bucket": "M0"}
    m2 = {**m0, "bucket": "M2"}
    assert registry.get_sample_value("loanwatch_portfolio_loans", m0) == 2.0
    # 0.10 + 0.20 summed as Decimal is exactly 0.30 (as float, 0.1 + 0.2 would not be).
    assert registry.get_sample_value("loanwatch_portfolio_outstanding_principal", m0) == 0.3
    assert registry.get_sample_value("loanwatch_portfolio_overdue_amount", m2) == 300.33
    assert registry.get_sample_value("loanwatch_portfolio_outstanding_principal", m2) == 900.01
    # Closed, written-off and sold loans are not in the portfolio.
    m7 = {**m0, "bucket": "M7+"}
    assert registry.get_sample_value("loanwatch_portfolio_loans", m7) == 0.0
    cls = {"product": "consumer", "region": "east", "classification": "special_mention"}
    assert registry.get_sample_value("loanwatch_portfolio_class_loans", cls) == 1.0
    stage = {"product": "consumer", "region": "east", "stage": "2"}
    assert (
        registry.get_sample_value("loanwatch_portfolio_stage_outstanding_principal", stage)
        == 900.01
    )


def test_every_bucket_class_and_stage_is_emitted_with_zeros() -> None:
    registry = collected([view(), view(product="mortgage", region="north")])
    for product, region in (("consumer", "east"), ("mortgage", "north")):
        base = {"product": product, "region": region}
        for bucket in BUCKETS:
            labels = {**base, "bucket": bucket}
            for name in ("loans", "outstanding_principal", "overdue_amount"):
                assert registry.get_sample_value(f"loanwatch_portfolio_{name}", labels) is not None
        for cls in CLASSES:
            labels = {**base, "classification": cls}
            assert registry.get_sample_value("loanwatch_portfolio_class_loans", labels) is not None
        for stage in STAGES:
            labels = {**base, "stage": stage}
            assert registry.get_sample_value("loanwatch_portfolio_stage_loans", labels) is not None
    # Only seen product x region pairs: no consumer/north cell.
    absent = {"product": "consumer", "region": "north", "bucket": "M0"}
    assert registry.get_sample_value("loanwatch_portfolio_loans", absent) is None


def test_collector_reads_views_at_scrape_time_not_at_registration() -> None:
    owned: list[LoanView] = []
    calls = 0

    def views() -> list[LoanView]:
        nonlocal calls
        calls += 1
        return owned

    registry = CollectorRegistry()
    registry.register(PortfolioCollector(views))
    assert calls == 0
    labels = {"product": "consumer", "region": "east", "bucket": "M0"}
    assert registry.get_sample_value("loanwatch_portfolio_loans", labels) is None
    owned.append(view())
    assert registry.get_sample_value("loanwatch_portfolio_loans", labels) == 1.0
    owned.clear()  # a rebalance took the partition away: the series disappear
    assert registry.get_sample_value("loanwatch_portfolio_loans", labels) is None


def test_an_unconfigured_bucket_is_counted_not_dropped() -> None:
    registry = collected([view(bucket="M9")])
    labels = {"product": "consumer", "region": "east", "bucket": "M9"}
    assert registry.get_sample_value("loanwatch_portfolio_loans", labels) == 1.0


def test_cardinality_stays_bounded_for_4_products_and_5_regions() -> None:
    products = ["consumer", "mortgage", "auto", "sme"]
    regions = ["north", "south", "east", "west", "central"]
    views = [
        view(
            loan_id=f"{p}-{r}-{b}",
            product=p,
            region=r,
            bucket=b,
            classification=c,
            ifrs9_stage=s,
        )
        for (p, r), (b, c, s) in zip(
            itertools.product(products, regions),
            itertools.cycle(zip(BUCKETS, itertools.cycle(CLASSES), itertools.cycle((1, 2, 3)))),
            strict=False,
        )
    ]
    registry = CollectorRegistry()
    metrics = register_pipeline_metrics(registry)
    registry.register(PortfolioCollector(lambda: views))
    # Touch every plausible label combination of the pipeline metrics.
    topics = {
        "loan.accounts": ["loan_opened", "schedule_revised", "loan_closed"],
        "loan.payments": ["payment_received", "payment_reversed"],
        "loan.collections": ["promise_to_pay", "contact_logged"],
        "loan.signals": ["risk_signal"],
        "loan.clock": ["clock_tick"],
    }
    for topic, types in topics.items():
        for type_, result in itertools.product(
            types, ("applied", "duplicate", "parked", "rejected")
        ):
            metrics.events.labels(topic=topic, type=type_, result=result).inc()
        for partition in range(8):
            metrics.consumer_lag.labels(topic=topic, partition=str(partition)).set(0)
    for reason in ("malformed_json", "unknown_type", "missing_field", "bad_amount", "bad_date",
                   "bad_schedule", "unknown_payment", "unknown_loan", "duplicate_loan",
                   "loan_closed"):  # fmt: skip
        metrics.dead_letters.labels(reason=reason).inc()
    kinds = ("overdue", "bucket_changed", "cured", "classification_changed", "cross_default",
             "cross_default_cleared", "promise_broken", "payment_reversed",
             "risk_signal")  # fmt: skip
    for kind, severity in itertools.product(kinds, ("info", "warning", "critical")):
        metrics.alerts.labels(kind=kind, severity=severity).inc()
    for p in products:
        for a, b in itertools.permutations(BUCKETS, 2):
            metrics.bucket_transitions.labels(from_bucket=a, to_bucket=b, product=p).inc()
        for b in BUCKETS[1:]:
            metrics.cures.labels(from_bucket=b, product=p).inc()
        for outcome in ("made", "kept", "broken"):
            metrics.promises.labels(outcome=outcome, product=p).inc()
        for r in regions:
            metrics.payments.labels(product=p, region=r).inc()
            metrics.payment_amount.labels(product=p, region=r, currency="CNY").inc()
    for channel in ("sms", "call", "email", "visit", "letter"):
        metrics.contacts.labels(channel=channel).inc()

    series = sum(len(family.samples) for family in registry.collect())
    assert series <= 2000, series
    # The portfolio part alone: 20 cells x (8 buckets x 3 + 5 classes x 2 + 3 stages x 2).
    portfolio = sum(
        len(f.samples) for f in registry.collect() if f.name.startswith("loanwatch_portfolio")
    )
    assert portfolio == 20 * (8 * 3 + 5 * 2 + 3 * 2)


def test_no_label_carries_a_loan_or_borrower_id() -> None:
    registry = collected([view(loan_id="LOAN-SECRET", borrower_id="BORROWER-SECRET")])
    exposition = generate_latest(registry).decode()
    assert "SECRET" not in exposition
