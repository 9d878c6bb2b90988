"""Borrower contact points and contact history in Redis, for the notifier and compliance.

``debtor:<borrower_id>`` (hash: phone, email, timezone, jurisdiction, locale, dnc) is written by
the CRM sync; ``contacts:<borrower_id>`` (sorted set by time) holds past contacts with the phone
number replaced by its key (an HMAC with the deployment's secret). Nothing here logs a phone
number or an address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loanwatch.routing.compliance import ContactRecord, ContactRequest

HISTORY_DAYS = 8  # the longest rule window (Reg F: 7 days) plus a margin


def number_key(phone: str | None, secret: bytes) -> str | None:
    """A stable key for a phone number (compliance counts per number): HMAC-SHA256 with the
    deployment's ``LOANWATCH_CONTACT_KEY_SECRET``. An unkeyed hash of a phone number is
    reversible by enumerating the numbering plan; without the secret this one is not."""
    if not phone:
        return None
    return hmac.new(secret, phone.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Debtor:
    borrower_id: str
    phone: str | None
    email: str | None
    timezone: str | None
    jurisdiction: str | None
    locale: str
    dnc: frozenset[str]
    number: str | None = None  # number_key(phone), made by the ContactBook with its secret

    def request(self, loan_id: str, channel: str) -> ContactRequest:
        return ContactRequest(
            loan_id,
            self.borrower_id,
            channel,
            self.number,
            self.jurisdiction,
            self.timezone,
            self.dnc,
        )


class ContactBook:
    def __init__(self, redis: Any, prefix: str, number_secret: bytes = b"") -> None:
        self.r, self.p, self.number_secret = redis, prefix, number_secret

    async def debtor(self, borrower_id: str) -> Debtor | None:
        raw: dict[str, str] = await self.r.hgetall(f"{self.p}debtor:{borrower_id}")
        if not raw:
            return None
        dnc = frozenset(x.strip() for x in raw.get("dnc", "").split(",") if x.strip())
        phone = raw.get("phone") or None
        return Debtor(
            borrower_id,
            phone,
            raw.get("email") or None,
            raw.get("timezone") or None,
            raw.get("jurisdiction") or None,
            raw.get("locale", "zh-CN"),
            dnc,
            number_key(phone, self.number_secret),
        )

    async def set_debtor(self, borrower_id: str, **fields: str) -> None:
        await self.r.hset(f"{self.p}debtor:{borrower_id}", mapping=fields)

    async def record(self, rec: ContactRecord) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            self.queue_record(pipe, rec)
            await pipe.execute()

    def queue_record(self, pipe: Any, rec: ContactRecord) -> None:
        """Queue the contact on ``pipe`` (part of the caller's transaction)."""
        doc = {
            "at": rec.at.isoformat(),
            "loan_id": rec.loan_id,
            "channel": rec.channel,
            "outcome": rec.outcome,
            "number": rec.number,
        }
        key = f"{self.p}contacts:{rec.debtor_id}"
        pipe.zadd(key, {json.dumps(doc, sort_keys=True): rec.at.timestamp()})
        pipe.zremrangebyscore(key, "-inf", (rec.at - timedelta(days=HISTORY_DAYS)).timestamp())
        pipe.expire(key, HISTORY_DAYS * 86400)  # a borrower not contacted again: gone

    async def history(self, debtor_id: str, now: datetime) -> list[ContactRecord]:
        since = (now - timedelta(days=HISTORY_DAYS)).timestamp()
        rows = await self.r.zrangebyscore(f"{self.p}contacts:{debtor_id}", since, "+inf")
        out = []
        for row in rows:
            doc = json.loads(row)
            out.append(
                ContactRecord(
                    datetime.fromisoformat(doc["at"]),
                    doc["loan_id"],
                    debtor_id,
                    doc["channel"],
                    doc["outcome"],
                    doc.get("number"),
                )
            )
        return out
