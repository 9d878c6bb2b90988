"""Who may call the collector API: clients with a hashed bearer token and a scope.

Tokens are never stored: the config holds the SHA-256 of each (tokens are random, 32 bytes or
more, so a fast hash is enough; a password would need scrypt), and a presented token is
compared with **every** client's digest by ``hmac.compare_digest`` (constant time, no early
exit). Scopes:

- ``collector``: their queue; claim/ack/resolve only items assigned to them or owned by one of
  their ``teams``; contacts, promises and contact checks only on loans whose open item is such
  an item;
- ``supervisor``: every item and loan (``teams`` unused);
- ``system``: an integration (CRM, dialer): contacts, promises and contact checks on any loan,
  no item actions.

Pure: parsing and decisions; the API (``api.py``) asks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loanwatch.routing.errors import ConfigError

SCOPES = ("collector", "supervisor", "system")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def token_digest(token: str) -> str:
    """What the config stores for ``token``: ``sha256(token)`` in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiClient:
    client_id: str
    digest: str
    scope: str
    collector: str | None = None
    teams: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        """Who the client acts as (the collector id in events and resolutions)."""
        return self.collector or self.client_id

    def may_act_on(self, item: Mapping[str, str]) -> bool:
        if self.scope == "supervisor":
            return True
        if self.scope != "collector":
            return False
        assignee = item.get("assignee") or item.get("acked_by") or ""
        return assignee == self.collector or item.get("team", "") in self.teams

    def may_touch_loan(self, open_item: Mapping[str, str] | None) -> bool:
        if self.scope in ("supervisor", "system"):
            return True
        return open_item is not None and self.may_act_on(open_item)


class ApiClients:
    def __init__(self, clients: Iterable[ApiClient]) -> None:
        self.clients = tuple(clients)

    def authenticate(self, token: str) -> ApiClient | None:
        presented = token_digest(token)
        found = None
        for client in self.clients:  # every digest compared: the time says nothing
            if hmac.compare_digest(client.digest, presented):
                found = client
        return found


def parse_clients(doc: Mapping[str, Any], teams: Iterable[str]) -> ApiClients:
    """``LOANWATCH_API_CLIENTS`` (JSON: ``{client_id: {token_sha256, scope, collector, teams}}``)
    -> clients; a bad entry raises ConfigError naming the client and key."""
    known = set(teams)
    out = []
    for client_id, raw in doc.items():
        where = f"LOANWATCH_API_CLIENTS[{client_id!r}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected an object, got {raw!r}")
        unknown = sorted(set(raw) - {"token_sha256", "scope", "collector", "teams"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
        digest = str(raw.get("token_sha256", "")).lower()
        if not _HEX64.match(digest):
            raise ConfigError(
                f"{where}.token_sha256: expected 64 hex digits (sha256 of the token: "
                "`printf %s TOKEN | sha256sum`), got {raw.get('token_sha256')!r}"
            )
        scope = raw.get("scope")
        if scope not in SCOPES:
            raise ConfigError(f"{where}.scope: expected one of {SCOPES}, got {scope!r}")
        collector = raw.get("collector")
        if scope == "collector" and not (isinstance(collector, str) and collector):
            raise ConfigError(f"{where}.collector: a collector client needs its collector id")
        team_list = raw.get("teams", [])
        if not isinstance(team_list, list) or not all(isinstance(t, str) for t in team_list):
            raise ConfigError(f"{where}.teams: expected a list of team names, got {team_list!r}")
        if missing := sorted(set(team_list) - known):
            raise ConfigError(f"{where}.teams: unknown team {missing[0]!r} (routing.yaml)")
        out.append(ApiClient(str(client_id), digest, str(scope), collector, frozenset(team_list)))
    digests = [c.digest for c in out]
    if len(set(digests)) != len(digests):
        raise ConfigError("LOANWATCH_API_CLIENTS: two clients share one token")
    return ApiClients(out)
