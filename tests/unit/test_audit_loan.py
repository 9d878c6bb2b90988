"""One loan's history (``audit loan``): the timeline built from audited steps, its chain proof,
and the trail's metrics; without Kafka (tests/audit_log.py writes the chains in memory)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from loanwatch.audit import keys
from loanwatch.audit.archive import write_archive
from loanwatch.audit.chain import canonical, sha256_hex
from loanwatch.audit.cli import audit
from loanwatch.audit.history import Observation, build_timeline, rule_of
from loanwatch.audit.loan import LoanNotFound, loan_history, partition_of
from loanwatch.audit.proof import check_proof
from loanwatch.audit.trail import AuditTrail
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.catalog import register_pipeline_metrics
from loanwatch.streams.topics import TopicNames

from ..audit_log import KEY, audited
from .test_audit_chain import Bulk, Engine, Heads, Inbound, Tail

pytestmark = pytest.mark.unit

LOG = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
TRUSTED = {keys.key_id(KEY.public_key()): KEY.public_key()}
EXTRA = [  # a contact, and a payment with a JSON number for an amount (dead-lettered)
    b'{"event_id": "x1", "type": "contact_logged", "occurred_at": "2026-02-16T10:00:00+08:00", '
    b'"loan_id": "B", "channel": "call", "outcome": "promised_again", "collector_id": "c7"}',
    b'{"event_id": "x2", "type": "payment_received", "occurred_at": "2026-02-17T10:00:00+08:00", '
    b'"loan_id": "B", "payment_id": "B9", "amount": 5}',
]


def _view(**over: Any) -> dict[str, Any]:
    base = {
        "loan_id": "L1",
        "as_of": "2026-03-01",
        "status": "active",
        "dpd": 0,
        "bucket": "M0",
        "own_class": "normal",
        "classification": "normal",
        "ifrs9_stage": 1,
        "restructured": False,
        "watchlist": False,
        "cross_default": False,
    }
    return base | over


def _rec(seq: int, loan_id: str | None, day: str, alerts: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "kind": "input",
        "seq": seq,
        "topic": "loan.accounts" if loan_id else "loan.clock",
        "offset": seq,
        "loan_id": loan_id,
        "business_date": day,
        "alerts": list(alerts),
        "dead_letters": [],
    }


def test_the_timeline_names_each_transition_with_its_rule_and_cause() -> None:
    opened = b'{"type":"loan_opened","event_id":"e1","loan_id":"L1"}'
    tick = b'{"type":"clock_tick","event_id":"t1","business_date":"2026-04-02"}'
    promise = (
        b'{"type":"promise_to_pay","event_id":"e2","loan_id":"L1","promise_id":"P1",'
        b'"amount":"10.00","promised_date":"2026-04-10"}'
    )
    overdue = _view(
        as_of="2026-04-02",
        dpd=32,
        bucket="M2",
        own_class="special_mention",
        classification="special_mention",
        ifrs9_stage=2,
    )
    broken = {"alert_id": "a9", "kind": "promise_broken", "promise_id": "P1", "loan_id": "L1"}
    later = overdue | {"as_of": "2026-04-11", "dpd": 41}
    steps = [
        Observation(_rec(0, "L1", "2026-03-01"), opened, _view(), {"dpd": "normal"}),
        Observation(
            _rec(1, None, "2026-04-02", ["a1"]),
            tick,
            overdue,
            {"dpd": "special_mention"},
            [{"alert_id": "a1", "kind": "overdue", "loan_id": "L1"}],
        ),
        Observation(_rec(2, "L1", "2026-04-03"), promise, overdue | {"as_of": "2026-04-03"}),
        Observation(_rec(3, None, "2026-04-11", ["a9"]), tick, later, {}, [broken]),
    ]
    doc = build_timeline("L1", 0, steps)
    by_field = {t["field"]: t for t in doc["transitions"]}
    assert doc["transitions"][0]["rule"] == ["loan_opened"]  # the opening: one entry
    assert by_field["bucket"]["from"] == "M0" and by_field["bucket"]["to"] == "M2"
    assert by_field["bucket"]["rule"] == ["dpd_buckets"]
    assert by_field["own_class"]["rule"] == ["dpd"]
    assert by_field["ifrs9_stage"]["rule"] == ["stage2_dpd"]
    assert by_field["overdue"]["by"] == "clock_or_borrower"
    assert by_field["overdue"]["cause"] == {"audit_seq": 1, "type": "clock_tick", "event_id": "t1"}
    assert [s["own"] for s in doc["steps"]] == [True, False, True, False]
    assert doc["steps"][0]["state"] == _view() and doc["steps"][1]["state"] is None
    assert [a["alert_id"] for a in doc["alerts"]] == ["a1", "a9"]
    assert doc["promises"] == [
        {
            "audit_seq": 2,
            "made_on": "2026-04-03",
            "promise_id": "P1",
            "amount": "10.00",
            "promised_date": "2026-04-10",
            "status": "broken",
            "broken_alert_id": "a9",
        }
    ]
    assert doc["state"] == later


def test_a_class_held_after_a_cure_is_named_by_its_floor() -> None:
    held = _view(dpd=0, own_class="substandard", classification="substandard")
    assert rule_of("own_class", held, {"dpd": "normal", "npl_cure": "substandard"}) == ["npl_cure"]
    by_dpd = _view(dpd=95, own_class="substandard", classification="substandard")
    assert rule_of("own_class", by_dpd, {"dpd": "substandard", "npl_cure": "substandard"}) == [
        "dpd"
    ]
    watched = _view(own_class="special_mention", classification="substandard", watchlist=True)
    floors = {"dpd": "normal", "watchlist": "special_mention", "cross_default": "substandard"}
    assert rule_of("own_class", watched, floors) == ["watchlist"]
    assert rule_of("classification", watched, floors) == ["cross_default_share"]


@pytest.fixture(scope="module")
def trail() -> tuple[dict, dict]:  # type: ignore[type-arg]
    lines = (LOG / "rules-allocation-reversal-promise" / "events.jsonl").read_bytes().splitlines()
    return audited([*lines[:-1], *EXTRA, lines[-1]])


def _history(trail: tuple[dict, dict], loan_id: str = "B") -> dict[str, Any]:  # type: ignore[type-arg]
    chains, inputs = trail
    p = partition_of(chains, loan_id)
    found = loan_history(loan_id, p, chains[p], inputs[p], Policy(), TopicNames(), len(chains))
    assert found.report.ok and found.report.inputs > 0
    return found.document


def test_a_loans_history_from_its_replayed_chain(trail: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    doc = _history(trail)
    own = [s for s in doc["steps"] if s["own"]]
    ids = [s["event_id"] for s in own]  # in chain order (the worker's merge of the lanes)
    assert sorted(ids) == ["h4", "h5", "h6", "h7", "h8", "h8", "x1", "x2"]
    assert [s["audit_seq"] for s in doc["steps"]] == sorted(s["audit_seq"] for s in doc["steps"])
    by_id = {s["event_id"]: s for s in own}
    assert by_id["x2"]["dead_letters"] == ["bad_amount"]
    assert [s["dead_letters"] for s in own if s["event_id"] == "h8"] == [[], []]  # a duplicate
    kinds = [a["kind"] for a in doc["alerts"]]
    assert kinds == ["overdue", "classification_changed", "payment_reversed", "promise_broken"]
    broken = doc["alerts"][-1]
    assert doc["promises"][0]["status"] == "broken"
    assert doc["promises"][0]["broken_alert_id"] == broken["alert_id"]
    assert doc["contacts"] == [
        {
            "audit_seq": by_id["x1"]["audit_seq"],
            "business_date": "2026-02-18",  # a late event applies on the clock (SPEC §2)
            "accepted": True,
            "event_id": "x1",
            "occurred_at": "2026-02-16T10:00:00+08:00",
            "channel": "call",
            "outcome": "promised_again",
            "collector_id": "c7",
        }
    ]
    moved = [(t["field"], t["to"], t["cause"]["event_id"]) for t in doc["transitions"]]
    assert ("bucket", "M1", "h6") in moved  # the reversal made it overdue
    # each own step's state is what the chain's record hashed
    chains, _ = trail
    records = {
        orjson.loads(s.value)["seq"]: orjson.loads(s.value) for s in chains[doc["partition"]]
    }
    for s in own:
        assert sha256_hex(canonical(s["state"])) == records[s["audit_seq"]]["state_sha256"]
    with pytest.raises(LoanNotFound):
        partition_of(chains, "NOPE")


def test_the_proof_verifies_and_says_what_is_signed(trail: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    doc = _history(trail)
    check = check_proof(doc, TRUSTED)
    assert check.ok, check.problems
    members = doc["proof"]["members"]
    assert members == sorted(s["audit_seq"] for s in doc["steps"])
    assert set(check.signed) | set(check.unsigned) == set(members)
    assert check.signed and check.unsigned == doc["proof"]["unsigned"]
    for segment in doc["proof"]["segments"][:-1]:
        assert orjson.loads(segment[-1])["kind"] == "checkpoint"


def _tampered(doc: dict[str, Any], change: Any) -> list[str]:
    bad = copy.deepcopy(doc)
    change(bad)
    return check_proof(bad, TRUSTED).problems


def _flip_byte(doc: dict[str, Any]) -> None:
    seg = doc["proof"]["segments"][0]
    at = seg[0].index('"input_sha256":"') + 20
    seg[0] = seg[0][:at] + ("1" if seg[0][at] != "1" else "2") + seg[0][at + 1 :]


def _edit_record(doc: dict[str, Any]) -> None:  # canonical again, so only the links tell
    seg = doc["proof"]["segments"][0]
    rec = orjson.loads(seg[0])
    rec["state_sha256"] = "0" * 64
    seg[0] = canonical(rec).decode()


def _forge_checkpoint(doc: dict[str, Any]) -> None:
    seg = doc["proof"]["segments"][0]
    rec = orjson.loads(seg[-1])
    other = Ed25519PrivateKey.generate()
    rec["signature"] = other.sign(b"anything").hex()
    seg[-1] = canonical(rec).decode()


def _drop_record(doc: dict[str, Any]) -> None:
    seg = next(s for s in doc["proof"]["segments"] if len(s) > 2)
    del seg[1]


def _state(doc: dict[str, Any]) -> None:
    next(s for s in doc["steps"] if s["own"])["state"]["dpd"] = 0 + 7


def _input(doc: dict[str, Any]) -> None:
    step = next(s for s in doc["steps"] if s["own"])
    step["input"] = step["input"].replace("sme", "retail")


def _disown(doc: dict[str, Any]) -> None:  # hiding a step's state from the check
    step = next(s for s in doc["steps"] if s["own"])
    step["own"], step["state"] = False, None


def _alert(doc: dict[str, Any]) -> None:
    doc["alerts"][0]["alert_id"] = "0" * 24


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_flip_byte, "does not name the hash"),
        (_edit_record, "does not name the hash"),
        (_forge_checkpoint, "signature does not verify"),
        (_drop_record, "does not name the hash"),
        (_state, "state_sha256"),
        (_input, "input_sha256"),
        (_alert, "not in its audit record"),
        (_disown, "own step"),
    ],
)
def test_a_tampered_history_or_proof_fails(
    trail: tuple[dict, dict], change: Any, named: str
) -> None:  # type: ignore[type-arg]
    doc = _history(trail)
    problems = _tampered(doc, change)
    assert problems and any(named in p for p in problems), problems


def test_a_proof_under_another_key_is_refused(trail: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    doc = _history(trail)
    other = Ed25519PrivateKey.generate().public_key()
    problems = check_proof(doc, {keys.key_id(other): other}).problems
    assert any("untrusted key" in p for p in problems)


@pytest.fixture
def archived(trail: tuple[dict, dict], tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[type-arg]
    """The trail as an archive, and the trusted key's .pub."""
    chains, inputs = trail
    write_archive(tmp_path / "archive", chains, inputs)
    pub = tmp_path / "key.pub"
    keys.write_public(KEY.public_key(), pub)
    return tmp_path / "archive", pub


def test_the_command_reads_an_archive_and_checks_the_proof(
    archived: tuple[Path, Path], tmp_path: Path
) -> None:
    archive, pub = archived
    args = ["loan", "B", "--archive", str(archive), "--public-key", str(pub)]
    result = CliRunner().invoke(audit, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert [a["kind"] for a in doc["alerts"]][-1] == "promise_broken"
    assert check_proof(doc, TRUSTED).ok
    assert "OK: the proof verifies" in result.output
    text = CliRunner().invoke(audit, args)
    assert text.exit_code == 0 and "promise P1 520.00 by 2026-02-20: broken" in text.output
    other = tmp_path / "other.pub"
    keys.write_public(Ed25519PrivateKey.generate().public_key(), other)
    refused = CliRunner().invoke(audit, [*args[:-1], str(other)])
    assert refused.exit_code == 1 and "untrusted key" in refused.output


async def test_the_trail_counts_records_checkpoints_bytes_and_time() -> None:
    metrics = register_pipeline_metrics(registry := CollectorRegistry())
    bulk = Bulk()
    trail = AuditTrail(
        "loan.audit",
        keys.Signer(KEY),
        Policy(),
        outputs=bulk,
        heads=Heads(),
        tail=Tail([]),
        checkpoint_every=2,
        metrics=metrics,
    )
    await trail.prepare(0, lambda: None)
    for offset in range(5):
        trail.record(Inbound("loan.payments", 0, offset, 1.0, b"{}"), [], [], Engine())
    trail.marks(0, [("loan.clock", 0)])
    trail.flush(0)
    trail.record(Inbound("loan.payments", 0, 1, 1.0, b"{}"), [], [], Engine())  # a re-read
    trail.flush(0)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("loanwatch_audit_records_total", kind="input") == 5
    assert value("loanwatch_audit_records_total", kind="marks") == 1
    assert value("loanwatch_audit_records_total", kind="checkpoint") == 2  # every 2 records
    assert value("loanwatch_audit_bytes_total") == sum(len(v) for v in bulk.sent)
    assert (value("loanwatch_audit_seconds_total") or 0) > 0
    assert value("loanwatch_audit_rereads_skipped_total") == 0  # not flushed: nothing new
    trail.record(Inbound("loan.payments", 0, 5, 1.0, b"{}"), [], [], Engine())
    trail.flush(0)
    assert value("loanwatch_audit_rereads_skipped_total") == 1
    assert value("loanwatch_audit_forks_total") == 0


def test_verify_and_replay_read_an_archive_through_the_shared_options(
    archived: tuple[Path, Path], tmp_path: Path
) -> None:
    archive, pub = archived
    source = ["--archive", str(archive)]
    verified = CliRunner().invoke(audit, ["verify", *source, "--public-key", str(pub)])
    assert verified.exit_code == 0 and "OK: every chain" in verified.output, verified.output
    replayed = CliRunner().invoke(audit, ["replay", *source])
    assert replayed.exit_code == 0 and "OK: every state hash" in replayed.output, replayed.output
    empty = CliRunner().invoke(audit, ["verify", "--archive", str(tmp_path / "none")])
    assert empty.exit_code == 1 and "no audit records" in empty.output


def test_work_items_follow_the_routers_episodes() -> None:
    from loanwatch.routing.config import DEFAULT_ROUTING, load_routing

    lines = (LOG / "rules-npl-cure-watchlist-late-open" / "events.jsonl").read_bytes().splitlines()
    chains, inputs = audited(lines)
    p = partition_of(chains, "F")
    setup = load_routing(DEFAULT_ROUTING)
    found = loan_history("F", p, chains[p], inputs[p], Policy(), TopicNames(), len(chains), setup)
    alerts = found.document["alerts"]
    (item,) = found.document["work_items"]["items"]
    first, cured = alerts[0], next(a for a in alerts if a["kind"] == "cured")
    assert item["item_id"] == f"wi-F-{first['alert_id']}" and item["opened_by"] == first["alert_id"]
    assert item["state"] == "resolved" and item["resolved_by"] == cured["alert_id"]
    # a more urgent route took it over on the way (the late-stage team has it at the end)
    assert item["changes"] and item["team"] == item["changes"][-1]["team"]
    assert item["alerts"] == [a["alert_id"] for a in alerts[: alerts.index(cured) + 1]]
    no_routing = _history((chains, inputs), "F")
    assert no_routing["work_items"]["available"] is False
