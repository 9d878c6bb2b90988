"""The SMTP sender against a real local SMTP server (aiosmtpd): STARTTLS with a certificate the
sender verifies, then AUTH; a relay that offers no STARTTLS, or whose certificate is not
trusted, is a delivery error and nothing is sent in clear."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from loanwatch.routing.errors import DeliveryError
from loanwatch.routing.notify.senders import EmailSender
from loanwatch.routing.templates import Message

from .test_routing_router import free_port

MESSAGE = Message(subject="loan LN-1 overdue", body="Loan LN-1 is 3 days past due.")


class Box:
    def __init__(self) -> None:
        self.mails: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"relay", b"relay-pass"))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    argv += ["-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1"]
    argv += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        argv,
        check=True,
        capture_output=True,
    )
    return crt, key


def start(box: Box, **kwargs: Any) -> Controller:
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def tls_relay(cert: tuple[Path, Path]) -> Iterator[tuple[Box, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    box = Box()
    controller = start(
        box,
        tls_context=context,
        require_starttls=True,
        authenticator=box.authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    yield box, controller.port
    controller.stop()


async def test_starttls_then_auth_delivers(
    tls_relay: tuple[Box, int], cert: tuple[Path, Path]
) -> None:
    box, port = tls_relay
    sender = EmailSender(
        "127.0.0.1", port, "lw@test", "starttls", "relay", "relay-pass", str(cert[0])
    )
    await sender.send("c-li@collections.example", MESSAGE, "al-1:r:email:oncall")
    [mail] = box.mails
    assert box.logins == [(b"relay", b"relay-pass")]
    assert b"X-Loanwatch-Ref: al-1:r:email:oncall" in mail.content
    assert b"Message-ID: <" in mail.content


async def test_untrusted_certificate_is_a_delivery_error(tls_relay: tuple[Box, int]) -> None:
    box, port = tls_relay
    sender = EmailSender("127.0.0.1", port, "lw@test", "starttls", "relay", "relay-pass")
    with pytest.raises(DeliveryError):
        await sender.send("c-li@collections.example", MESSAGE, "k")
    assert box.mails == [] and box.logins == []  # the password never left


async def test_a_relay_without_starttls_is_refused() -> None:
    box = Box()
    controller = start(box)
    try:
        sender = EmailSender("127.0.0.1", controller.port, "lw@test", "starttls", "u", "p")
        with pytest.raises(DeliveryError):
            await sender.send("c-li@collections.example", MESSAGE, "k")
    finally:
        controller.stop()
    assert box.mails == []
