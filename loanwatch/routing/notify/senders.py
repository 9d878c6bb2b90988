"""Senders: one delivery attempt each over the SMS gateway, SMTP, a webhook or Alertmanager.

They raise :class:`DeliveryError` on failure and never retry (the worker does), never log
message bodies, phone numbers or addresses, and never decide whether a contact is allowed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

import aiohttp

from loanwatch.routing.errors import DeliveryError
from loanwatch.routing.templates import Message

SIGNATURE_HEADER = "X-Loanwatch-Signature"
TIMESTAMP_HEADER = "X-Loanwatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_TIMEOUT = aiohttp.ClientTimeout(total=10)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>`` (replay-resistant)."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


async def _post(session: aiohttp.ClientSession, url: str, what: str, **kw: Any) -> None:
    try:
        async with session.post(url, timeout=_TIMEOUT, **kw) as resp:
            if resp.status >= 300:
                raise DeliveryError(f"{what} answered HTTP {resp.status}")
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"{what} unreachable: {type(exc).__name__}") from exc


class SmsGateway:
    """HTTP SMS gateway: ``POST {url}`` JSON ``{to, text, ref}`` with basic auth."""

    def __init__(self, session: aiohttp.ClientSession, url: str, user: str, password: str) -> None:
        self.session, self.url = session, url
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"} if user else {}

    async def send(self, phone: str, message: Message, ref: str) -> None:
        payload = {"to": phone, "text": message.body, "ref": ref}
        await _post(
            self.session,
            self.url,
            "SMS gateway",
            json=payload,
            headers=self.auth | {IDEMPOTENCY_HEADER: ref},
        )


class EmailSender:
    """SMTP relay through stdlib smtplib, run in a worker thread.

    ``security``: ``none`` (a loopback relay), ``starttls`` (upgrade before anything else; the
    relay's certificate verified against ``ca_file`` or the system's CAs; a relay that does
    not offer STARTTLS is a delivery error, never a silent plaintext send) or ``tls``
    (implicit TLS). With a ``username``, AUTH after the upgrade.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        security: str = "none",
        username: str = "",
        password: str = "",
        ca_file: str | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.security, self.username, self.password = security, username, password
        self.context = ssl.create_default_context(cafile=ca_file) if security != "none" else None

    def _send_sync(self, to: str, message: Message, ref: str) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, to, message.subject
        mail["X-Loanwatch-Ref"] = ref
        # The same ref always gives the same Message-ID: a re-send after a crash is the same
        # message to the relay and the reader's client.
        mail["Message-ID"] = f"<{hashlib.sha256(ref.encode()).hexdigest()[:32]}@loanwatch>"
        mail.set_content(message.body)
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=10, context=self.context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=10)
        with smtp:
            if self.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(f"SMTP {self.host}:{self.port} does not offer STARTTLS")
                smtp.starttls(context=self.context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(mail)

    async def send(self, to: str, message: Message, ref: str) -> None:
        try:
            await asyncio.to_thread(self._send_sync, to, message, ref)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}") from exc


class WebhookSender:
    """JSON POST to a collectors' tool, signed with HMAC-SHA256 in ``X-Loanwatch-Signature``."""

    def __init__(
        self, session: aiohttp.ClientSession, urls: Mapping[str, str], secret: bytes
    ) -> None:
        self.session, self.urls, self.secret = session, urls, secret

    async def send(self, name: str, payload: Mapping[str, Any], ref: str) -> None:
        url = self.urls.get(name)
        if url is None:
            raise DeliveryError(f"no webhook named {name!r} in routing.yaml")
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, ts, body),
            TIMESTAMP_HEADER: ts,
            IDEMPOTENCY_HEADER: ref,
        }
        await _post(self.session, url, f"webhook {name!r}", data=body, headers=headers)


class AlertmanagerSender:
    """Forward an alert to Alertmanager's API v2 (``POST /api/v2/alerts``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.url = session, base_url.rstrip("/") + "/api/v2/alerts"

    async def send(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> None:
        body = [{"labels": dict(labels), "annotations": dict(annotations)}]
        await _post(self.session, self.url, "Alertmanager", json=body)
