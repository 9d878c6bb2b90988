"""Secrets and clients of ``routes serve``: hashed tokens compared in constant time, scopes,
start-up refusals that name the setting, the phone-number key keyed by a secret."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from loanwatch.routing.auth import ApiClient, parse_clients, token_digest
from loanwatch.routing.config import load_routing
from loanwatch.routing.contacts import number_key
from loanwatch.routing.errors import ConfigError
from loanwatch.routing.service import check_secrets
from loanwatch.routing.settings import RouterSettings

SETUP = load_routing()
GOOD = {
    "webhook_secret": SecretStr("w" * 16),
    "contact_key_secret": SecretStr("c" * 16),
}


def test_tokens_are_stored_hashed_and_found_by_digest() -> None:
    clients = parse_clients(
        {
            "c-li": {
                "token_sha256": token_digest("s3cret-li"),
                "scope": "collector",
                "collector": "c-li",
                "teams": ["consumer-early"],
            },
            "crm": {"token_sha256": token_digest("s3cret-crm").upper(), "scope": "system"},
        },
        SETUP.teams,
    )
    li = clients.authenticate("s3cret-li")
    assert li is not None and (li.scope, li.actor, li.teams) == (
        "collector",
        "c-li",
        frozenset({"consumer-early"}),
    )
    crm = clients.authenticate("s3cret-crm")
    assert crm is not None and crm.actor == "crm"
    assert clients.authenticate("s3cret") is None
    assert clients.authenticate(token_digest("s3cret-li")) is None  # the digest is no token
    assert all("s3cret" not in repr(c) for c in clients.clients)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"token_sha256": "plain-token", "scope": "system"}, "64 hex digits"),
        ({"token_sha256": "a" * 64, "scope": "admin"}, "scope"),
        ({"token_sha256": "a" * 64, "scope": "collector"}, "collector id"),
        ({"token_sha256": "a" * 64, "scope": "system", "teams": ["nope"]}, "unknown team"),
        ({"token_sha256": "a" * 64, "scope": "system", "token": "x"}, "unknown key"),
    ],
)
def test_bad_client_entries_are_refused_naming_the_key(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_clients({"x": entry}, SETUP.teams)


def test_two_clients_with_one_token_are_refused() -> None:
    entry = {"token_sha256": "b" * 64, "scope": "system"}
    with pytest.raises(ConfigError, match="share one token"):
        parse_clients({"a": entry, "b": entry}, SETUP.teams)


def test_scopes() -> None:
    mine = {"team": "consumer-early", "assignee": "c-zhao"}
    other = {"team": "sme-collections", "assignee": "s-chen"}
    collector = ApiClient("c-li", "d" * 64, "collector", "c-li", frozenset({"consumer-early"}))
    loner = ApiClient("s-chen", "e" * 64, "collector", "s-chen")
    supervisor = ApiClient("sup", "f" * 64, "supervisor")
    system = ApiClient("crm", "0" * 64, "system")
    assert collector.may_act_on(mine) and not collector.may_act_on(other)
    assert loner.may_act_on(other) and not loner.may_act_on(mine)
    assert supervisor.may_act_on(other) and not system.may_act_on(mine)
    assert not collector.may_touch_loan(None) and system.may_touch_loan(None)


def test_start_up_refuses_missing_or_short_secrets() -> None:
    check_secrets(RouterSettings(**GOOD), SETUP)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"LOANWATCH_WEBHOOK_SECRET.*webhook"):
        check_secrets(RouterSettings(**GOOD | {"webhook_secret": SecretStr("")}), SETUP)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LOANWATCH_CONTACT_KEY_SECRET"):
        check_secrets(RouterSettings(**GOOD | {"contact_key_secret": SecretStr("short")}), SETUP)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LOANWATCH_API_CLIENTS"):
        check_secrets(RouterSettings(**GOOD, api_tokens={"tok": "c-li"}), SETUP)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LOANWATCH_SMTP_SECURITY"):
        check_secrets(RouterSettings(**GOOD, smtp_username="relay"), SETUP)  # type: ignore[arg-type]


def test_routes_serve_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "LOANWATCH_CONTACT_KEY_SECRET": "c" * 20}
    proc = subprocess.run(
        [sys.executable, "-m", "loanwatch.cli", "routes", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    assert "LOANWATCH_WEBHOOK_SECRET" in proc.stderr and "webhook" in proc.stderr


def test_the_number_key_is_an_hmac_with_the_secret() -> None:
    phone = "+8613800000000"
    key = number_key(phone, b"k" * 16)
    assert key is not None and len(key) == 32
    assert key == number_key(phone, b"k" * 16)  # stable: compliance counts per number
    assert key != number_key(phone, b"x" * 16)
    # An unkeyed hash (the old key) is found by enumerating numbers; this one is not.
    assert key != hashlib.sha256(phone.encode()).hexdigest()[: len(key)]
    assert number_key(None, b"k") is None
