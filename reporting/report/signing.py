"""Detached Ed25519 signatures of report files.

``FILE.sig`` holds the raw 64-byte Ed25519 signature of the file's bytes, so it can also be
checked without meetaudit::

    openssl pkey -in key.pem -pubout -out pub.pem
    openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in FILE.pdf -sigfile FILE.pdf.sig

The signing key is a PEM private key (``openssl genpkey -algorithm ed25519 -out key.pem``). The
public key's fingerprint (``SHA256:`` + base64 of the SHA-256 of the raw key) is printed in the
report and the raw public key is stored in the ledger entry, so a file can be checked later
even where the private key is not available.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from reporting.errors import ConfigError

SIGNATURE_SUFFIX = ".sig"


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the signing key {path} is not an unencrypted PEM private key ({exc}); create one "
            "with: openssl genpkey -algorithm ed25519 -out key.pem"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (public, or private: its public half)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the key {path}: {exc.strerror}") from exc
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"the key {path} is not an Ed25519 key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_from_b64(value: str) -> Ed25519PublicKey:
    """A public key from the base64 of its raw bytes (as the ledger stores it)."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(value))


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the raw public key, as OpenSSH prints key fingerprints."""
    digest = hashlib.sha256(raw_public(key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def signature_path(path: Path) -> Path:
    """Where the detached signature of ``path`` lives: ``path`` + ``.sig``."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The raw 64-byte Ed25519 signature of ``data``."""
    return key.sign(data)


def verify(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid signature of ``data`` by ``key``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
