"""OAuth v4: consent link, code exchange with PKCE, single-use codes and refresh tokens."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlsplit

from ketnoi_sandbox import pkce_challenge

from .conftest import APP_ID, APP_SECRET, DAY, OA, OA2, USER, VERIFIER, Harness, MakeHarness

REDIRECT = "https://ketnoi.example/zalo/callback"


def code_form(code: str, verifier: str = VERIFIER) -> dict[str, str]:
    return {
        "code": code,
        "app_id": APP_ID,
        "grant_type": "authorization_code",
        "code_verifier": verifier,
    }


def refresh_form(refresh_token: str) -> dict[str, str]:
    return {"refresh_token": refresh_token, "app_id": APP_ID, "grant_type": "refresh_token"}


async def consent(sb: Harness, **params: str) -> dict[str, str]:
    query = {
        "app_id": APP_ID,
        "redirect_uri": REDIRECT,
        "code_challenge": pkce_challenge(VERIFIER),
    } | params
    r = await sb.client.get("/v4/oa/permission", params=query)
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    return dict(parse_qsl(location.query)) | {"_path": location.path}


async def test_consent_then_exchange_gives_a_working_pair(sb: Harness) -> None:
    callback = await consent(sb, state="abc", oa_id=OA2)
    assert callback["oa_id"] == OA2 and callback["state"] == "abc"
    r = await sb.oauth(code_form(callback["code"]))
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["access_token", "refresh_token", "expires_in"]
    assert body["expires_in"] == "90000"
    await sb.interact(oa=OA2)
    sent = await sb.cs(body["access_token"], {"text": "x"})
    assert sent.json()["error"] == 0
    [pair] = (await sb.client.get("/sandbox/tokens")).json()
    assert pair["oa_id"] == OA2 and pair["grant"] == "authorization_code"


async def test_consent_defaults_to_the_first_oa_and_keeps_redirect_query(sb: Harness) -> None:
    callback = await consent(sb, redirect_uri=REDIRECT + "?tenant=hcm")
    assert callback["oa_id"] == OA
    assert callback["tenant"] == "hcm"
    assert "state" not in callback


async def test_consent_errors_redirect_to_the_error_page(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(redirect_uris=(REDIRECT,)) as sb:
        bad_app = await consent(sb, app_id="1")
        assert bad_app == {"_path": "/v4/permission/error", "error_code": "-14002"}
        bad_redirect = await consent(sb, redirect_uri="https://evil.example/cb")
        assert bad_redirect["error_code"] == "-14003"
        assert "code" in await consent(sb)
        page = await sb.client.get("/v4/permission/error", params={"error_code": -14003})
        assert (
            page.json()["error"] == -14003 and page.json()["error_name"] == "Invalid redirect uri"
        )
        r = await sb.client.get(
            "/v4/oa/permission", params={"app_id": APP_ID, "redirect_uri": REDIRECT}
        )
        assert "error_code=-14001" in r.headers["location"]  # PKCE required by default


async def test_codes_are_single_use(sb: Harness) -> None:
    code = await sb.code()
    first = await sb.oauth(code_form(code))
    assert "access_token" in first.json()
    second = (await sb.oauth(code_form(code))).json()
    assert second["error"] == -14005
    assert set(second) == {"error", "error_name", "error_reason", "error_description", "ref_doc"}
    assert len((await sb.client.get("/sandbox/tokens")).json()) == 1


async def test_pkce_mismatch_is_refused(sb: Harness) -> None:
    code = await sb.code()
    wrong = await sb.oauth(code_form(code, verifier="x" * 43))
    assert wrong.json()["error"] == -14006
    missing = await sb.oauth({"code": code, "app_id": APP_ID, "grant_type": "authorization_code"})
    assert missing.json()["error"] == -14006
    # a failed PKCE check does not burn the code
    assert "access_token" in (await sb.oauth(code_form(code))).json()


async def test_code_expires_after_ten_minutes(sb: Harness) -> None:
    code = await sb.code()
    sb.clock.advance(600)
    assert (await sb.oauth(code_form(code))).json()["error"] == -14005


async def test_secret_key_header_and_form_body_are_required(sb: Harness) -> None:
    code = await sb.code()
    assert (await sb.oauth(code_form(code), secret=None)).json()["error"] == -14004
    assert (await sb.oauth(code_form(code), secret="wrong")).json()["error"] == -14004
    as_json = await sb.client.post(
        "/v4/oa/access_token", json=code_form(code), headers={"secret_key": APP_SECRET}
    )
    assert as_json.json()["error"] == -14001
    assert (await sb.oauth(code_form(code) | {"app_id": "1"})).json()["error"] == -14002
    assert (await sb.oauth(code_form(code) | {"grant_type": "password"})).json()["error"] == -14001
    assert "access_token" in (await sb.oauth(code_form(code))).json()


async def test_refresh_tokens_are_single_use(sb: Harness) -> None:
    first = await sb.tokens()
    r = await sb.oauth(refresh_form(first["refresh_token"]))
    second = r.json()
    assert list(second) == ["access_token", "refresh_token", "expires_in"]
    assert second["expires_in"] == "90000"
    assert second["refresh_token"] != first["refresh_token"]
    reused = (await sb.oauth(refresh_form(first["refresh_token"]))).json()
    assert reused["error"] == -14014
    assert reused["error_name"] == "Invalid refresh token"
    third = (await sb.oauth(refresh_form(second["refresh_token"]))).json()
    assert "access_token" in third
    states = [
        (t["refresh_state"], t["access_state"])
        for t in (await sb.client.get("/sandbox/tokens")).json()
    ]
    assert states == [("used", "active"), ("used", "active"), ("active", "active")]
    # the new access token works; the old one keeps working until it expires
    await sb.interact()
    assert (await sb.cs(third["access_token"], {"text": "x"})).json()["error"] == 0
    assert (await sb.cs(first["access_token"], {"text": "x"})).json()["error"] == 0


async def test_concurrent_refreshes_only_one_wins(sb: Harness) -> None:
    pair = await sb.tokens()
    answers = await asyncio.gather(
        *(sb.oauth(refresh_form(pair["refresh_token"])) for _ in range(5))
    )
    bodies = [a.json() for a in answers]
    assert sum("access_token" in b for b in bodies) == 1
    assert sum(b.get("error") == -14014 for b in bodies) == 4


async def test_refresh_token_expires_after_three_months(sb: Harness) -> None:
    pair = await sb.tokens()
    sb.clock.advance(90 * DAY)
    assert (await sb.oauth(refresh_form(pair["refresh_token"]))).json()["error"] == -14014
    assert (await sb.oauth(refresh_form("never-issued"))).json()["error"] == -14014


async def test_access_token_lifetime_setting(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(access_token_lifetime_s=3600) as sb:
        pair = await sb.tokens()
        assert pair["expires_in"] == "3600"
        refreshed = (await sb.oauth(refresh_form(pair["refresh_token"]))).json()
        assert refreshed["expires_in"] == "3600"
        await sb.interact(USER)
        sb.clock.advance(3600)
        assert (await sb.cs(refreshed["access_token"], {"text": "x"})).json()["error"] == -216
