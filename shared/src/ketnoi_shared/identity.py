"""Identity protection: keyed pseudonyms and sealed (encrypted) identifiers.

A citizen's Zalo user id never leaves ingest in clear. Topics carry:

* a **pseudonym**: ``psn_`` + 32 hex digits of HMAC-SHA256(pseudonym key, purpose + id). The
  same id always gives the same pseudonym, so one citizen's messages can be grouped and keyed,
  but the id cannot be recovered from it;
* a **sealed** copy where a service must reply: AES-256-GCM with a random 96-bit nonce, the
  purpose as associated data (a sealed phone number cannot be unsealed as a user id), and the
  key id in the token so keys can be rotated: ``sealed:v1:<kid>:<base64url(nonce|ciphertext)>``.
* **sealed bytes** for binary evidence (a citizen's original photo or clip): the same AES-256-GCM
  key and purpose-as-associated-data scheme, in a compact binary layout
  ``KSB1 | len(kid) (1 byte) | kid | nonce (12 bytes) | ciphertext and tag``.

Exception tree::

    IdentityError
    ├── MissingKeyError      no key configured
    └── UnsealError          wrong key, tampered token, wrong purpose, malformed token
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "IdentityError",
    "IdentityProtector",
    "MissingKeyError",
    "UnsealError",
    "generate_pseudonym_key",
    "generate_seal_key",
    "is_pseudonym",
    "is_sealed",
    "is_sealed_bytes",
]

SEALED_PREFIX: Final = "sealed:v1:"
SEALED_BYTES_MAGIC: Final = b"KSB1"
PSEUDONYM_PREFIX: Final = "psn_"
_PSEUDONYM_RE: Final = re.compile(r"^psn_[0-9a-f]{32}$")
_NONCE_BYTES: Final = 12


class IdentityError(Exception):
    """Base class of identity protection errors."""


class MissingKeyError(IdentityError):
    """A sealing or pseudonym key is required but not configured."""


class UnsealError(IdentityError):
    """A sealed token could not be opened (wrong key, tampering, wrong purpose, bad format)."""


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def generate_seal_key(kid: str | None = None) -> str:
    """A new sealing key in settings format ``<kid>:<base64>``."""
    kid = kid or "k" + os.urandom(3).hex()
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode('ascii')}"


def generate_pseudonym_key() -> str:
    """A new pseudonym key in settings format (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


def _parse_seal_key(text: str) -> tuple[str, bytes]:
    kid, sep, encoded = text.strip().partition(":")
    if not sep or not kid or ":" in encoded:
        raise MissingKeyError("a sealing key must look like '<key id>:<base64 of 32 bytes>'")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise MissingKeyError("sealing key is not valid base64") from exc
    if len(raw) != 32:
        raise MissingKeyError("a sealing key must be 32 bytes (AES-256)")
    return kid, raw


def is_pseudonym(value: str) -> bool:
    return bool(_PSEUDONYM_RE.match(value))


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def is_sealed_bytes(value: bytes) -> bool:
    return value.startswith(SEALED_BYTES_MAGIC)


@dataclass(frozen=True, slots=True)
class IdentityProtector:
    """Pseudonymises and seals identifiers with the process's keys."""

    pseudonym_key: bytes
    seal_kid: str
    seal_keys: dict[str, AESGCM] = field(repr=False)

    @classmethod
    def from_keys(
        cls, *, pseudonym_key: str | None, seal_key: str | None, old_seal_keys: str | None = None
    ) -> IdentityProtector:
        if not pseudonym_key:
            raise MissingKeyError("KETNOI_PSEUDONYM_KEY is not configured")
        if not seal_key:
            raise MissingKeyError("KETNOI_SEAL_KEY is not configured")
        try:
            pkey = base64.b64decode(pseudonym_key, validate=True)
        except ValueError as exc:
            raise MissingKeyError("pseudonym key is not valid base64") from exc
        if len(pkey) < 32:
            raise MissingKeyError("the pseudonym key must be at least 32 bytes")
        kid, raw = _parse_seal_key(seal_key)
        keys = {kid: AESGCM(raw)}
        for old in filter(None, (old_seal_keys or "").split(",")):
            old_kid, old_raw = _parse_seal_key(old)
            keys.setdefault(old_kid, AESGCM(old_raw))
        return cls(pseudonym_key=pkey, seal_kid=kid, seal_keys=keys)

    def pseudonym(self, identifier: str, *, purpose: str = "zalo-user") -> str:
        """Stable keyed pseudonym of ``identifier`` (same input and key → same output)."""
        digest = hmac.new(
            self.pseudonym_key, f"{purpose}\x1f{identifier}".encode(), hashlib.sha256
        ).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]

    def seal(self, plaintext: str, *, purpose: str) -> str:
        """Encrypt ``plaintext`` so that only a holder of the key can read it back."""
        nonce = os.urandom(_NONCE_BYTES)
        ct = self.seal_keys[self.seal_kid].encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{SEALED_PREFIX}{self.seal_kid}:{_b64encode(nonce + ct)}"

    def unseal(self, token: str, *, purpose: str) -> str:
        """Decrypt a token made by :meth:`seal` with the same purpose."""
        if not token.startswith(SEALED_PREFIX):
            raise UnsealError("not a sealed token")
        kid, sep, body = token[len(SEALED_PREFIX) :].partition(":")
        key = self.seal_keys.get(kid)
        if not sep or key is None:
            raise UnsealError("sealed with an unknown key")
        try:
            raw = _b64decode(body)
            return key.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode()).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError) as exc:
            raise UnsealError("sealed token does not open with this key and purpose") from exc

    def seal_bytes(self, data: bytes, *, purpose: str) -> bytes:
        """Encrypt binary ``data`` (see the module docstring for the layout).

        The purpose is the associated data, as for :meth:`seal`: bytes sealed for one purpose do
        not open for another."""
        kid = self.seal_kid.encode()
        if not 0 < len(kid) < 256:
            raise MissingKeyError("a sealing key id must be 1 to 255 bytes")
        nonce = os.urandom(_NONCE_BYTES)
        ct = self.seal_keys[self.seal_kid].encrypt(nonce, data, purpose.encode())
        return b"".join((SEALED_BYTES_MAGIC, bytes([len(kid)]), kid, nonce, ct))

    def unseal_bytes(self, blob: bytes, *, purpose: str) -> bytes:
        """Decrypt bytes made by :meth:`seal_bytes` with the same purpose."""
        if not blob.startswith(SEALED_BYTES_MAGIC) or len(blob) < len(SEALED_BYTES_MAGIC) + 1:
            raise UnsealError("not sealed bytes")
        start = len(SEALED_BYTES_MAGIC) + 1
        end = start + blob[len(SEALED_BYTES_MAGIC)]
        try:
            kid = blob[start:end].decode("ascii")
        except UnicodeDecodeError as exc:
            raise UnsealError("sealed bytes carry a malformed key id") from exc
        key = self.seal_keys.get(kid)
        if key is None:
            raise UnsealError("sealed with an unknown key")
        nonce, ct = blob[end : end + _NONCE_BYTES], blob[end + _NONCE_BYTES :]
        try:
            return key.decrypt(nonce, ct, purpose.encode())
        except (InvalidTag, ValueError) as exc:
            raise UnsealError("sealed bytes do not open with this key and purpose") from exc
