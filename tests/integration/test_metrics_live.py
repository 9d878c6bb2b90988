"""Issue #5 against the real worker: its metrics, the recording rules and the dashboards.

One `loanwatch worker` process (its own topics, app id and data dir) receives a simulated
portfolio with a barrier after every event; Prometheus scrapes it through file_sd with a unique
``portfolio`` label. The figures Prometheus records must be those computed from
``loanwatch replay`` of the same log (active loans only, balance-weighted):

- PAR30 = outstanding in M2..M7+ / total, PAR90 = M4..M7+ / total,
- NPL = outstanding classified substandard + doubtful + loss / total,
- outstanding principal and loan count per bucket.

A router (``loanwatch routes serve --register-target``, its own consumer group and Redis
prefix) follows the worker's alerts and closures and registers itself as a ``loanwatch-router``
target with the same label: the open work items per team Prometheus scrapes equal the router's
Redis once it has consumed everything, and every dashboard panel (work queues included) has
data for the portfolio.

Then a second worker joins the group (same app id, a second target with the same label): the
sums over both targets still equal the replay totals (nothing counted twice, nothing dropped),
and again after the second worker is stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner

from loanwatch.dashboards.build import load_all
from loanwatch.dashboards.check import Problem, run_queries
from loanwatch.dashboards.cli import dashboards
from loanwatch.ledger.parse import business_date_of
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.view import LoanView
from loanwatch.metrics.portfolio import BUCKETS
from loanwatch.replay.runner import replay
from loanwatch.routing.config import load_routing
from loanwatch.routing.workitems import WorkItems, connect
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import generate
from loanwatch.stack.paths import StackPaths
from loanwatch.streams.producer import ensure_topics
from loanwatch.streams.topics import TopicNames

from .live import PARTITIONS, REPO, WorkerProcess, delete_scratch_topics, produce_log, wait_ready
from .test_dashboards_live import RouterRun, serve_router

# No faults and no late events: nothing is dead-lettered, so the shared Alertmanager's on-call
# receiver is not paged by this test (LoanwatchDeadLetters has no `for`).
# The shipped strategies (segments, paths, the champion-challenger experiment) and early
# warning: every panel of the dashboards, the experiments row and the pre-due panel included,
# reads a worker that runs them.
LAYERS = {
    "LOANWATCH_STRATEGIES_FILE": str(REPO / "config" / "strategies.yaml"),
    "LOANWATCH_EARLY_WARNING_FILE": str(REPO / "config" / "early_warning.yaml"),
}
SIMULATION = SimulationConfig(loans=300, days=120, seed=7, fault_rate=0.0, late_rate=0.0)
PAR30_BUCKETS = frozenset({"M2", "M3", "M4", "M5", "M6", "M7+"})
PAR90_BUCKETS = frozenset({"M4", "M5", "M6", "M7+"})
NPL_CLASSES = frozenset({"substandard", "doubtful", "loss"})
MAX_SERIES = 2000
REL = 1e-9


@dataclass
class Expected:
    loans: int
    outstanding: Decimal
    par30: Decimal
    par90: Decimal
    npl: Decimal
    outstanding_by_bucket: dict[str, Decimal]
    loans_by_bucket: dict[str, int]


def expected_figures(states: list[LoanView]) -> Expected:
    active = [v for v in states if v.status == "active"]
    total = sum((v.outstanding_principal for v in active), Decimal(0))

    def share(keep: Callable[[LoanView], bool]) -> Decimal:
        return sum((v.outstanding_principal for v in active if keep(v)), Decimal(0)) / total

    return Expected(
        loans=len(active),
        outstanding=total,
        par30=share(lambda v: v.bucket in PAR30_BUCKETS),
        par90=share(lambda v: v.bucket in PAR90_BUCKETS),
        npl=share(lambda v: v.classification in NPL_CLASSES),
        outstanding_by_bucket={
            b: sum((v.outstanding_principal for v in active if v.bucket == b), Decimal(0))
            for b in BUCKETS
        },
        loans_by_bucket={b: sum(1 for v in active if v.bucket == b) for b in BUCKETS},
    )


def close(got: float, want: Decimal | int) -> bool:
    return math.isclose(got, float(want), rel_tol=REL, abs_tol=1e-9)


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(prometheus_url: str, expr: str) -> float | None:
    result = query(prometheus_url, expr)
    return float(result[0]["value"][1]) if result else None


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)


def metrics_text(worker: WorkerProcess) -> str:
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def worker_sum(text: str, metric: str) -> float:
    """Sum of one metric family's samples in a worker's exposition text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in samples(text)
        if line.startswith(metric + "{") or line.startswith(metric + " ")
    )


@dataclass
class Live:
    portfolio: str
    prefix: str
    names: TopicNames
    first: WorkerProcess
    expected: Expected
    produced_at: float  # wall time once every event was processed
    data_root: Path
    register: Callable[[WorkerProcess], None]
    router: RouterRun


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    redis_url: str,
    prometheus_url: str,
    stack_paths: StackPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Live]:
    token = uuid.uuid4().hex[:12]
    failed_before = request.session.testsfailed
    portfolio = f"metrics-live-{token}"
    prefix = f"lwm-{token}."
    names = TopicNames().with_prefix(prefix)
    data_root = tmp_path_factory.mktemp("metrics-live")
    written: list[Path] = []
    folder = stack_paths.prometheus_targets
    folder.mkdir(parents=True, exist_ok=True)

    def register(worker: WorkerProcess) -> None:
        path = folder / f"test-{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        entry = [{"targets": [f"127.0.0.1:{worker.port}"], "labels": {"portfolio": portfolio}}]
        tmp.write_text(json.dumps(entry))
        tmp.rename(path)
        written.append(path)

    lines = [e if isinstance(e, bytes) else orjson.dumps(e) for e in generate(SIMULATION)]
    as_of = date.fromisoformat(replay(lines, Policy()).states[0].as_of)
    result = replay(lines, Policy(), as_of=as_of)
    assert not result.rejects
    first = WorkerProcess(
        app_id=prefix.rstrip("."), prefix=prefix, data_dir=data_root / "w1", extra_env=LAYERS
    )
    first.start()
    try:
        asyncio.run(wait_ready([first]))
        register(first)
        # The router reads the worker's alerts (and closures) while the log is produced.
        asyncio.run(ensure_topics(kafka_bootstrap, names, PARTITIONS))
        with serve_router(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            alerts_topic=names.alerts,
            status_topic=names.status,
            portfolio=portfolio,
            targets_dir=stack_paths.prometheus_router_targets,
            work_dir=data_root / "router",
        ) as router:
            # In two halves with a scrape between: produced at full speed, one half is
            # processed within a scrape interval, and a rate() needs two samples that differ.
            half = len(lines) // 2
            asyncio.run(produce_log(kafka_bootstrap, names, lines[:half], [first]))
            wait_scraped_after(prometheus_url, portfolio, time.time(), targets=1)
            asyncio.run(produce_log(kafka_bootstrap, names, lines[half:], [first], as_of=as_of))
            yield Live(
                portfolio,
                prefix,
                names,
                first,
                expected_figures(result.states),
                time.time(),
                data_root,
                register,
                router,
            )
    except BaseException:
        print(first.log_tail())
        raise
    finally:
        for path in written:  # first: a worker that does not stop must not stay a target
            path.unlink(missing_ok=True)
        try:
            first.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:  # stuck on an unreachable broker: do not leave it
            first.kill(signal.SIGKILL)
        if request.session.testsfailed == failed_before:  # kept to look at if any failed
            delete_scratch_topics([prefix.rstrip(".")])


def wait_scraped_after(prometheus_url: str, portfolio: str, since: float, targets: int) -> None:
    """Until every target of the portfolio was scraped after ``since`` and the rules ran."""
    up = f'timestamp(up{{job="loanwatch",portfolio="{portfolio}"}}) > {since}'
    scraped = wait_for(
        lambda: len(query(prometheus_url, up)) >= targets and query(prometheus_url, up),
        90,
        f"{targets} scrape(s) of {portfolio} after t={since:.0f}",
    )
    last = max(float(s["value"][1]) for s in scraped)
    rule = f'timestamp(loanwatch:outstanding_principal:sum{{portfolio="{portfolio}"}}) > {last}'
    wait_for(lambda: query(prometheus_url, rule), 60, "a rule evaluation after that scrape")


def read_figures(prometheus_url: str, p: str) -> dict[str, float | None]:
    sel = f'{{portfolio="{p}"}}'
    figures = {
        name: scalar(prometheus_url, f"{record}{sel}")
        for name, record in (
            ("par30", "loanwatch:par30:ratio"),
            ("par90", "loanwatch:par90:ratio"),
            ("npl", "loanwatch:npl:ratio"),
            ("outstanding", "loanwatch:outstanding_principal:sum"),
        )
    }
    for s in query(prometheus_url, f"loanwatch:outstanding_principal_by_bucket:sum{sel}"):
        figures[s["metric"]["bucket"]] = float(s["value"][1])
    for s in query(prometheus_url, f"loanwatch:loans_by_bucket:sum{sel}"):
        figures[f"loans {s['metric']['bucket']}"] = float(s["value"][1])
    return figures


def test_recording_rules_equal_the_replay(live: Live, prometheus_url: str) -> None:
    want, p = live.expected, live.portfolio
    assert want.par30 > 0 and want.npl > 0 and want.par90 > 0  # a portfolio with loans at risk
    expected: dict[str, Decimal | int] = {
        "par30": want.par30,
        "par90": want.par90,
        "npl": want.npl,
        "outstanding": want.outstanding,
        **want.outstanding_by_bucket,
        **{f"loans {b}": n for b, n in want.loans_by_bucket.items()},
    }
    print(
        f"\nreplay: {want.loans} active loans, outstanding {want.outstanding}, "
        f"PAR30 {float(want.par30):.6f}, PAR90 {float(want.par90):.6f}, NPL {float(want.npl):.6f}"
    )
    wait_scraped_after(prometheus_url, p, live.produced_at, targets=1)
    # The barrier follows two exposure -> command round trips; a cross-default chain can take
    # one more, so read successive evaluations until they equal the replay (or time out).
    history: list[dict[str, float | None]] = []
    deadline = time.monotonic() + 90
    while True:
        got = read_figures(prometheus_url, p)
        if not history or got != history[-1]:
            history.append(got)
        wrong = {
            k: (got.get(k), float(v))
            for k, v in expected.items()
            if got.get(k) is None or not close(got[k] or 0.0, v)
        }
        if not wrong:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"recorded figures differ from the replay: {wrong}\nseen: {history}")
        time.sleep(2.0)
    print(f"prometheus: {got} (after {len(history) - 1} earlier distinct reading(s))")


async def _router_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages of ``topics`` the router's group has not committed yet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        probe = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await probe.start()
        try:
            committed = {tp: await probe.committed(tp) or 0 for tp in tps}
        finally:
            await probe.stop()
        return sum(ends[tp] - committed[tp] for tp in tps)
    finally:
        await consumer.stop()


def test_router_queue_depth_reaches_prometheus(
    live: Live, kafka_bootstrap: str, redis_url: str, prometheus_url: str
) -> None:
    # The router reads the alerts and the ledger's verdicts (loan.status), not loan.accounts.
    router, topics = live.router, [live.names.alerts, live.names.status]

    def caught_up() -> bool:
        return asyncio.run(_router_lag(kafka_bootstrap, router.group, topics)) == 0

    wait_for(caught_up, 90, "the router to commit every alert and status event")

    async def open_counts() -> dict[str, int]:
        client = connect(redis_url)
        try:
            store = WorkItems(client, load_routing(router.routing_config), router.prefix)
            return await store.open_counts()
        finally:
            await client.aclose()

    p = live.portfolio
    seen: list[tuple[dict[str, int], dict[str, float]]] = []

    def prometheus_equals_redis() -> bool:
        want = asyncio.run(open_counts())
        settled = time.time()
        scraped = f'timestamp(up{{job="loanwatch-router",portfolio="{p}"}}) > {settled}'
        wait_for(lambda: query(prometheus_url, scraped), 60, "a router scrape after reading Redis")
        got = {
            s["metric"]["team"]: float(s["value"][1])
            for s in query(prometheus_url, f'loanwatch_workitems_open{{portfolio="{p}"}}')
        }
        seen.append((want, got))
        # Redis unchanged around the scrape (a late cross-default alert would move it).
        return got == {t: float(n) for t, n in want.items()} and asyncio.run(open_counts()) == want

    deadline = time.monotonic() + 60
    while not prometheus_equals_redis():
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus and the router's Redis differ (redis, prometheus): {seen}")
    want = seen[-1][0]
    print(f"\nrouter: open work items by team {want} (after {len(seen) - 1} retries)")
    assert sum(want.values()) > 0  # the portfolio has delinquent loans with open items


def test_every_dashboard_panel_has_data_from_the_worker(live: Live, prometheus_url: str) -> None:
    boards = load_all()
    overrides = {"portfolio": live.portfolio}
    problems: list[Problem] = []

    def every_panel_has_data() -> bool:
        nonlocal problems
        _, problems = run_queries(boards, prometheus_url, overrides=overrides)
        return not problems

    deadline = time.monotonic() + 90
    while not every_panel_has_data():
        if time.monotonic() > deadline:
            pytest.fail("panels without data:\n" + "\n".join(map(str, problems)))
        time.sleep(3)
    lag = query(prometheus_url, f'loanwatch_consumer_lag_messages{{portfolio="{live.portfolio}"}}')
    assert lag, "consumer lag gauge never set"


def test_dashboards_check_command_passes(live: Live, prometheus_url: str) -> None:
    cli = CliRunner().invoke(
        dashboards,
        ["check", "--prometheus-url", prometheus_url, "--var", f"portfolio={live.portfolio}"],
    )
    assert cli.exit_code == 0, cli.output
    assert "queries returned data" in cli.output


def test_worker_exposes_under_2000_series(live: Live) -> None:
    text = metrics_text(live.first)
    count = len(samples(text))
    print(f"\n/metrics of one worker holding the whole simulated portfolio: {count} samples")
    assert count < MAX_SERIES
    # The worker's own gauges agree with the replay before Prometheus is involved.
    want = live.expected
    assert close(worker_sum(text, "loanwatch_portfolio_outstanding_principal"), want.outstanding)
    assert worker_sum(text, "loanwatch_portfolio_loans") == want.loans


def _totals(prometheus_url: str, portfolio: str) -> tuple[float | None, float | None, int]:
    sel = f'{{portfolio="{portfolio}"}}'
    outstanding = scalar(
        prometheus_url, f"sum by (portfolio) (loanwatch_portfolio_outstanding_principal{sel})"
    )
    loans = scalar(prometheus_url, f"sum by (portfolio) (loanwatch_portfolio_loans{sel})")
    instances = query(prometheus_url, f"count by (instance) (loanwatch_portfolio_loans{sel})")
    return outstanding, loans, len(instances)


def _wait_totals(live: Live, prometheus_url: str, instances: int, since: float) -> None:
    want = live.expected
    wait_scraped_after(prometheus_url, live.portfolio, since, targets=instances)
    seen: list[Any] = []

    def equal() -> bool:
        outstanding, loans, n = _totals(prometheus_url, live.portfolio)
        seen[:] = [outstanding, loans, n]
        return (
            n == instances
            and outstanding is not None
            and loans is not None
            and close(outstanding, want.outstanding)
            and loans == want.loans
        )

    # Views are restored from the tables shortly after the recovery; a scrape taken in between
    # is partial, so wait for the settled state rather than fail on the first sample.
    deadline = time.monotonic() + 90
    while not equal():
        if time.monotonic() > deadline:
            pytest.fail(
                f"sums over {instances} worker(s) (outstanding, loans, instances) = {seen}, "
                f"replay = ({want.outstanding}, {want.loans})"
            )
        time.sleep(1.0)
    print(f"\n{instances} worker(s): outstanding {seen[0]}, loans {seen[1]}")


def test_rebalance_neither_double_counts_nor_drops(live: Live, prometheus_url: str) -> None:
    second = WorkerProcess(
        app_id=live.prefix.rstrip("."),
        prefix=live.prefix,
        data_dir=live.data_root / "w2",
        extra_env=LAYERS,
    )
    second.start()
    try:
        live.register(second)
        asyncio.run(wait_ready([live.first, second]))
        joined = time.time()
        _wait_totals(live, prometheus_url, instances=2, since=joined)
        # Both workers hold a share; together, exactly the portfolio.
        texts = [metrics_text(w) for w in (live.first, second)]
        shares = [worker_sum(t, "loanwatch_portfolio_loans") for t in texts]
        assert all(s > 0 for s in shares) and sum(shares) == live.expected.loans, shares
        assert close(
            sum(worker_sum(t, "loanwatch_portfolio_outstanding_principal") for t in texts),
            live.expected.outstanding,
        )

        second.kill(signal.SIGTERM)
        asyncio.run(wait_ready([live.first]))
        left = time.time()
        down = f'up{{job="loanwatch",portfolio="{live.portfolio}"}} == 0'
        wait_for(lambda: query(prometheus_url, down), 60, "the stopped worker's failed scrape")
        _wait_totals(live, prometheus_url, instances=1, since=left)
    except BaseException:
        print(second.log_tail())
        raise
    finally:
        second.kill(signal.SIGTERM)


def _expected_flows(
    lines: list[bytes], day: date
) -> tuple[dict[str, int], dict[tuple[str, str], int], int]:
    """From replays of the log: active loans per bucket when ``day`` began (everything before
    the log's first record of that day, aged to the day before), and the day's transitions
    (its ``overdue``, ``bucket_changed`` and ``cured`` alerts) and cures."""
    policy = Policy()
    first = next(
        i
        for i, line in enumerate(lines)
        if (d := business_date_of(orjson.loads(line), policy.tz)) is not None and d >= day
    )
    before = replay(lines[:first], policy, as_of=day - timedelta(days=1))
    at_start = Counter(v.bucket for v in before.states if v.status == "active")
    moved: Counter[tuple[str, str]] = Counter()
    for alert in replay(lines, policy, as_of=day).alerts:
        doc = alert.to_json()
        if doc["business_date"] != day.isoformat():
            continue
        if doc["kind"] == "overdue":
            moved[("M0", doc["bucket"])] += 1
        elif doc["kind"] == "bucket_changed":
            moved[(doc["from_bucket"], doc["to_bucket"])] += 1
        elif doc["kind"] == "cured":
            moved[(doc["from_bucket"], "M0")] += 1
    cures = sum(n for (_, to), n in moved.items() if to == "M0")
    return dict(at_start), dict(moved), cures


def test_roll_and_cure_rates_are_those_of_the_business_day_in_the_replay(
    live: Live, prometheus_url: str
) -> None:
    """The roll and cure rules describe the latest business day the worker finished (the day
    before its clock), with the replay's figures: loans per bucket when the day began, and
    the day's moves, however fast the log went by on the wall clock (here: seconds)."""
    lines = [e if isinstance(e, bytes) else orjson.dumps(e) for e in generate(SIMULATION)]
    as_of = date.fromisoformat(replay(lines, Policy()).states[0].as_of)
    day = as_of - timedelta(days=1)
    at_start, moved, cures = _expected_flows(lines, day)
    delinquent = sum(n for b, n in at_start.items() if b != "M0")
    assert delinquent > 0, at_start  # the cure rate is a real ratio
    want_rolls = {pair: n / at_start[pair[0]] for pair, n in moved.items()}
    want_cure = cures / delinquent
    p = live.portfolio
    wait_scraped_after(prometheus_url, p, live.produced_at, targets=1)
    stamp = scalar(prometheus_url, f'loanwatch_flow_business_date{{portfolio="{p}"}}')
    assert stamp is not None
    assert datetime.fromtimestamp(stamp, Policy().tz).date() == day
    rolls = {
        (s["metric"]["from_bucket"], s["metric"]["to_bucket"]): float(s["value"][1])
        for s in query(prometheus_url, f'loanwatch:roll_rate:ratio{{portfolio="{p}"}}')
    }
    cure = scalar(prometheus_url, f'loanwatch:cure_rate:ratio{{portfolio="{p}"}}')
    print(f"\nbusiness day {day}: at start {at_start}, moved {moved}; rolls {rolls}, cure {cure}")
    assert rolls.keys() == want_rolls.keys(), (rolls, want_rolls)
    assert all(close(rolls[k], Decimal(str(v))) for k, v in want_rolls.items()), (rolls, want_rolls)
    assert cure is not None and close(cure, Decimal(str(want_cure))), (cure, want_cure)
