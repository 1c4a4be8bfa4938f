"""Zalo webhook signatures: ``X-ZEvent-Signature``.

The formula (../shared/zalo/README.md §2.1, verified against a real capture) is the lowercase
hex SHA-256 — a plain hash, not an HMAC — of the UTF-8 bytes of
``app_id + raw_body + timestamp + oa_secret_key``, where ``raw_body`` is the request body byte
for byte and ``timestamp`` the body's own timestamp field as written. The header may carry a
``mac=`` prefix. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["compute_signature", "signature_matches"]


def compute_signature(*, app_id: str, raw_body: bytes, timestamp: str, secret: str) -> str:
    digest = hashlib.sha256()
    digest.update(app_id.encode())
    digest.update(raw_body)
    digest.update(timestamp.encode())
    digest.update(secret.encode())
    return digest.hexdigest()


def signature_matches(header: str, expected_hex: str) -> bool:
    value = header.strip()
    if value[:4].lower() == "mac=":
        value = value[4:].strip()
    return hmac.compare_digest(value.lower().encode(), expected_hex.encode())
