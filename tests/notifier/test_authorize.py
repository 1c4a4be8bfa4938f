"""OAuth v4 + PKCE helpers of `ketnoi zalo authorize`."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

from ketnoi_notifier.authorize import Pkce, callback_values, permission_url


def test_pkce_challenge_is_the_s256_of_the_verifier():
    pkce = Pkce.new()
    assert len(pkce.verifier) == 43
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert Pkce.new().verifier != pkce.verifier


def test_permission_url_and_callback():
    pkce = Pkce.new()
    url = permission_url(
        oauth_url="https://oauth.zaloapp.com/",
        app_id="123",
        redirect_uri="https://ketnoi.example/cb",
        pkce=pkce,
    )
    parts = urlsplit(url)
    assert parts.path == "/v4/oa/permission"
    query = parse_qs(parts.query)
    assert query["code_challenge"] == [pkce.challenge]
    assert query["app_id"] == ["123"]
    code, oa, state = callback_values(
        f"https://ketnoi.example/cb?code=XYZ&oa_id=4123&state={pkce.state}"
    )
    assert (code, oa, state) == ("XYZ", "4123", pkce.state)
    assert callback_values("  BARECODE ") == ("BARECODE", None, None)
