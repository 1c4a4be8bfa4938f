"""OAuth v4 with PKCE for an OA: the permission URL, the code exchange, the first token pair.

(../shared/zalo/README.md §4.) The administrator opens the permission URL while logged in as
an OA admin, Zalo redirects to the callback with ``code`` and ``oa_id``; the code is exchanged
with the PKCE verifier for an access/refresh pair, stored sealed for the notifier.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["Pkce", "callback_values", "permission_url"]


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str
    state: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(32)[:43]  # 43 characters, as Zalo's samples
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return cls(verifier=verifier, challenge=challenge, state=secrets.token_urlsafe(12))


def permission_url(*, oauth_url: str, app_id: str, redirect_uri: str, pkce: Pkce) -> str:
    query = urlencode(
        {
            "app_id": app_id,
            "redirect_uri": redirect_uri,
            "code_challenge": pkce.challenge,
            "state": pkce.state,
        }
    )
    return f"{oauth_url.rstrip('/')}/v4/oa/permission?{query}"


def callback_values(url_or_code: str) -> tuple[str, str | None, str | None]:
    """(code, oa_id, state) from the callback URL the browser landed on, or a bare code."""
    if "code=" not in url_or_code:
        return url_or_code.strip(), None, None
    query = parse_qs(urlsplit(url_or_code.strip()).query or url_or_code.split("?", 1)[-1])
    return query["code"][0], query.get("oa_id", [None])[0], query.get("state", [None])[0]
