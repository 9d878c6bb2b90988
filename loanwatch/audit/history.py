"""One loan's timeline from its partition's audited steps (pure: observations in, a dict out).

An :class:`Observation` is one audited input of the loan's partition that concerned the loan:
an event naming it, or any input (a tick, a borrower signal, another loan's event moving the
clock) after which the loan alerted or one of its tracked fields changed. From them
:func:`build_timeline` makes the document ``audit loan`` prints and ``GET /loans/{id}/history``
returns (docs/audit.md, "One loan's history"): the evidence ``steps`` (each tied to its audit
record by ``audit_seq``) and what is derived from them: transitions with the rule that caused
each, alerts, contacts and promises.

Never reads Kafka, a file or a clock; the proof (:mod:`loanwatch.audit.proof`) is made apart.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import orjson

from loanwatch.ledger.loan import LoanState, evaluate, in_observation, on_watchlist
from loanwatch.ledger.policy import Policy

#: The view fields whose changes are transitions (``overdue`` is derived: DPD > 0).
TRACKED = (
    "status",
    "overdue",
    "bucket",
    "own_class",
    "classification",
    "ifrs9_stage",
    "restructured",
    "watchlist",
    "cross_default",
)
#: The own-class floors of SPEC §5, in the order a rule is named when several bind.
FLOOR_ORDER = ("dpd", "restructure", "npl_cure", "watchlist")
#: The rule behind a change of each field that has a single one.
FIELD_RULES = {
    "status": "loan_closed",
    "overdue": "dpd",
    "bucket": "dpd_buckets",
    "restructured": "restructure_observation",
    "watchlist": "watchlist_days",
    "cross_default": "cross_default_share",
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One audited input of the loan's partition, with the loan as it stood after it."""

    record: Mapping[str, Any]  # the ``input`` audit record (chain.py)
    value: bytes | None  # the input's bytes (their SHA-256 is the record's input_sha256)
    after: Mapping[str, Any] | None  # the loan's SPEC §7 view after it (None: no such loan)
    floors: Mapping[str, str] = field(default_factory=dict)  # class floors after it
    alerts: Sequence[Mapping[str, Any]] = ()  # the loan's alerts it produced


def class_floors(loan: LoanState, on: date, policy: Policy) -> dict[str, str]:
    """The class each SPEC §5 floor gives the loan on ``on`` (those that apply), and the
    borrower's cross-default floor (``cross_default``)."""
    if loan.closed_on is not None:
        on = loan.closed_on
    elif loan.evaluated_on != on:
        loan = replace(loan)
        evaluate(loan, on, policy)
    floors = {"dpd": policy.dpd_class(loan.last_dpd)}
    if in_observation(loan, on) and loan.restructure_floor is not None:
        floors["restructure"] = loan.restructure_floor
    if loan.npl:
        floors["npl_cure"] = "substandard"
    if on_watchlist(loan, on):
        floors["watchlist"] = "special_mention"
    if loan.cross_default:
        floors["cross_default"] = "substandard"
    return floors


def tracked(view: Mapping[str, Any] | None) -> dict[str, Any]:
    if view is None:
        return {}
    out = {k: view[k] for k in TRACKED if k in view}
    out["overdue"] = int(view.get("dpd", 0)) > 0
    return out


def rule_of(name: str, after: Mapping[str, Any], floors: Mapping[str, str]) -> list[str]:
    """The rule(s) that gave ``after[name]`` its new value."""
    if name in FIELD_RULES:
        return [FIELD_RULES[name]]
    if name == "classification" and after.get("classification") != after.get("own_class"):
        return ["cross_default_share"]
    if name in ("own_class", "classification"):
        own = after.get("own_class")
        # the NPL flag is set by any substandard class: it is the rule only when nothing
        # else holds the class there (the cure period after DPD went back to 0)
        bound = [f for f in FLOOR_ORDER if floors.get(f) == own and f != "npl_cure"]
        if not bound and floors.get("npl_cure") == own:
            bound = ["npl_cure"]
        return bound or ["dpd"]
    if name == "ifrs9_stage":
        return _stage_rules(after)
    return [name]


def _stage_rules(after: Mapping[str, Any]) -> list[str]:
    stage, dpd, cls = (
        after.get("ifrs9_stage"),
        int(after.get("dpd", 0)),
        after.get("classification"),
    )
    if stage == 3:
        rules = ["stage3_dpd"] if dpd > 90 else []
        bad = cls in ("substandard", "doubtful", "loss")
        return rules + (["stage3_class"] if bad or not rules else [])
    if stage == 2:
        rules = [
            n
            for n, on in (
                ("stage2_dpd", dpd > 30),
                ("restructured", after.get("restructured")),
                ("watchlist", after.get("watchlist")),
            )
            if on
        ]
        return rules or ["stage2"]
    return ["stage1"]


def _input_fields(value: bytes | None) -> dict[str, Any]:
    """The input as text (its exact bytes, when UTF-8) or base64, and what it says."""
    if value is None:
        return {"input": None}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"input": None, "input_base64": base64.b64encode(value).decode()}
    out: dict[str, Any] = {"input": text}
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return out
    if isinstance(obj, dict):
        for key in ("type", "event_id", "occurred_at"):
            if isinstance(obj.get(key), str):
                out[key] = obj[key]
    return out


def build_timeline(
    loan_id: str,
    partition: int,
    observations: Sequence[Observation],
    final: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The loan's history document (without its proof), in chain order; ``final``: the
    loan's view at the end of the chain (default: after its last observation)."""
    steps: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    promises: dict[str, dict[str, Any]] = {}
    before: dict[str, Any] = {}
    state: Mapping[str, Any] | None = None
    for ob in observations:
        rec = ob.record
        seq, day = int(rec["seq"]), rec.get("business_date")
        own = rec.get("loan_id") == loan_id
        step = {
            "audit_seq": seq,
            "topic": rec.get("topic"),
            "offset": rec.get("offset"),
            "business_date": day,
            "own": own,
            **_input_fields(ob.value),
            "dead_letters": list(rec.get("dead_letters") or []) if own else [],
            "alerts": [str(a.get("alert_id")) for a in ob.alerts],
            "state": dict(ob.after) if own and ob.after is not None else None,
        }
        steps.append(step)
        cause = {"audit_seq": seq, "type": step.get("type"), "event_id": step.get("event_id")}
        now = tracked(ob.after)
        for name in TRACKED if before else ("status",) if now else ():
            if name in now and before.get(name) != now[name]:
                transitions.append(
                    {
                        "business_date": day,
                        "field": name,
                        "from": before.get(name),
                        "to": now[name],
                        "rule": rule_of(name, ob.after or {}, ob.floors)
                        if before
                        else ["loan_opened"],
                        "by": "event" if own else "clock_or_borrower",
                        "cause": cause,
                    }
                )
        if now:
            before = now
            state = ob.after
        alerts.extend({"audit_seq": seq, **a} for a in ob.alerts)
        accepted = own and not step["dead_letters"]
        obj = _decoded(ob.value) if own else None
        if obj is not None and obj.get("type") == "contact_logged":
            contacts.append(
                {
                    "audit_seq": seq,
                    "business_date": day,
                    "accepted": accepted,
                    **{
                        k: obj.get(k)
                        for k in ("event_id", "occurred_at", "channel", "outcome", "collector_id")
                    },
                }
            )
        if obj is not None and obj.get("type") == "promise_to_pay" and accepted:
            pid = str(obj.get("promise_id"))
            promises[pid] = {
                "audit_seq": seq,
                "made_on": day,
                "promise_id": pid,
                "amount": obj.get("amount"),
                "promised_date": obj.get("promised_date"),
                "status": "open",
            }
        for a in ob.alerts:
            if a.get("kind") == "promise_broken" and str(a.get("promise_id")) in promises:
                promises[str(a.get("promise_id"))] |= {
                    "status": "broken",
                    "broken_alert_id": a.get("alert_id"),
                }
    if final is not None:
        state = final
    clock = state.get("as_of") if state else None
    for p in promises.values():
        if p["status"] == "open" and clock is not None and str(p["promised_date"]) < str(clock):
            p["status"] = "not_broken"  # its day is past and no promise_broken alert fired
    return {
        "loan_id": loan_id,
        "partition": partition,
        "state": dict(state) if state is not None else None,
        "steps": steps,
        "transitions": transitions,
        "alerts": alerts,
        "contacts": contacts,
        "promises": list(promises.values()),
    }


def _decoded(value: bytes | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
