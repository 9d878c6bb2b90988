"""Ed25519 keys of the audit checkpoints: made, loaded, used to sign and to verify.

A private key is a PKCS#8 PEM file (mode 0600); its public key sits beside it as ``<file>.pub``
(SubjectPublicKeyInfo PEM), which is what an auditor is given. A key is named by its *key id*:
the SHA-256 of the 32 raw public key bytes, in hex. Never logs or prints a private key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class AuditKeyError(RuntimeError):
    """The audit signing key cannot be used: make one with ``loanwatch audit keygen --out
    FILE`` (or ``loanwatch stack up`` for the demo key) and point LOANWATCH_AUDIT_KEY_FILE
    at it."""


def public_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def generate(path: Path, *, exist_ok: bool = True) -> bool:
    """Write a new private key to ``path`` and its public key beside it; False if it existed."""
    if path.exists():
        if not exist_ok:
            raise AuditKeyError(f"{path} exists: refusing to overwrite a signing key")
        if not public_path(path).exists():
            write_public(load_private(path).public_key(), public_path(path))
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # atomic and exclusive: two racing makers keep one key
        made = True
    except FileExistsError:
        made = False
    finally:
        tmp.unlink()
    write_public(load_private(path).public_key(), public_path(path))
    return made


def write_public(key: Ed25519PublicKey, path: Path) -> None:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(pem)
    tmp.rename(path)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise AuditKeyError(f"audit signing key {path} does not exist") from exc
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """A public key file, or the public half of a private key file."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuditKeyError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()


class Signer:
    """Signs checkpoint messages with one private key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        return cls(load_private(path))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
