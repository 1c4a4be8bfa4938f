"""Accounts, sessions, CSRF and need-to-know: an officer of one unit gets nothing of another,
through any endpoint, and PostgreSQL enforces it even on a reused pooled connection."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from ketnoi_console.access import scoped
from ketnoi_shared.contracts import NOTIFY_REQUESTS

from .conftest import PASSWORD, Browser, Seeded, make_case

pytestmark = pytest.mark.integration


async def test_login_logout_and_audit(app_client: httpx.AsyncClient, seeded: Seeded) -> None:
    b = Browser(app_client)
    assert (await app_client.get("/inbox")).status_code == 303  # to the login page
    bad = await b.login("officer_a", "wrong-password-123")
    assert bad.status_code == 401
    assert "không đúng" in bad.text
    ok = await b.login("officer_a")
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    inbox = await app_client.get("/inbox")
    assert inbox.status_code == 200 and "Cán bộ A" in inbox.text
    assert (await b.post("/logout")).status_code == 303
    assert (await app_client.get("/inbox")).status_code == 303
    actions = [
        r["action"]
        for r in await seeded.pool.fetch(
            "SELECT action FROM audit_log WHERE username = 'officer_a' ORDER BY id"
        )
    ]
    assert actions == ["account.add", "login.failed", "login"]


async def test_login_is_throttled(app_client: httpx.AsyncClient, seeded: Seeded) -> None:
    b = Browser(app_client)
    for _ in range(3):
        assert (await b.login("officer_b", "not-the-password")).status_code == 401
    # Even the right password is refused inside the window.
    throttled = await b.login("officer_b", PASSWORD)
    assert throttled.status_code == 429
    assert "quá nhiều lần" in throttled.text
    assert (
        await seeded.pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'login.throttled'"
        )
        == 1
    )


async def test_login_needs_its_csrf_token(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/login", data={"username": "officer_a", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert "ketnoi_session" not in response.headers.get("set-cookie", "")


async def test_disabled_account_loses_its_session(browser, seeded: Seeded) -> None:
    from ketnoi_console.auth import disable_account  # noqa: PLC0415

    a = await browser("officer_a")
    assert (await a.client.get("/inbox")).status_code == 200
    async with seeded.pool.acquire() as conn:
        await disable_account(conn, "officer_a")
    assert (await a.client.get("/inbox")).status_code == 303


async def test_posts_without_csrf_are_refused(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a = await browser("officer_a")
    for path, data in (
        ("reply", {"text": "Xin chào"}),
        ("note", {"text": "ghi chú"}),
        ("status", {"status": "verifying"}),
        ("transfer", {"unit_id": "ld-xa-b", "reason": "Sự việc thuộc địa bàn phường B"}),
    ):
        response = await a.client.post(f"/cases/{case['id']}/{path}", data=data)
        assert response.status_code == 403, path
        forged = await a.client.post(
            f"/cases/{case['id']}/{path}", data={**data, "csrf_token": "x" * 40}
        )
        assert forged.status_code == 403, path
    assert await seeded.pool.fetchval("SELECT count(*) FROM case_actions") == 0
    assert await seeded.pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await seeded.pool.fetchval("SELECT status FROM cases") == "new"


async def test_officer_of_another_unit_gets_nothing(browser, seeded: Seeded) -> None:
    case = await make_case(
        seeded,
        owner="ld-xa-a",
        text="Bán ma túy ở quán cà phê đầu hẻm",
        attachments=[{"type": "image", "url": "https://cdn.example/x.jpg"}],
    )
    async with seeded.pool.acquire() as conn:
        media_id = await conn.fetchval(
            """INSERT INTO media_objects (event_id, position, oa_id, citizen_pseudonym, kind,
                   status, content_type, size_bytes, sha256, display, display_content_type)
               VALUES ($1, 0, 'oa', $2, 'image', 'stored', 'image/jpeg', 3, 'ab', $3,
                       'image/jpeg') RETURNING id""",
            case["event_id"],
            case["pseudonym"],
            b"\xff\xd8\xff",
        )
    a, b = await browser("officer_a"), await browser("officer_b")
    assert case["reference"] in (await a.client.get("/inbox")).text
    assert (await a.client.get(f"/cases/{case['id']}/media/{media_id}")).status_code == 200

    listing = await b.client.get("/inbox")
    assert case["reference"] not in listing.text and "Bán ma túy" not in listing.text
    assert case["reference"] not in (await b.client.get("/inbox/rows?q=ma tuy")).text
    found = await b.client.get(f"/inbox/rows?q={case['reference']}")
    assert "case-row" not in found.text and "Không có tin báo nào" in found.text
    assert case["reference"] not in (await b.client.get("/inbox.csv")).text
    assert (await b.client.get(f"/cases/{case['id']}")).status_code == 404
    assert (await b.client.get(f"/cases/{case['id']}/timeline")).status_code == 404
    assert (await b.client.get(f"/cases/{case['id']}/media/{media_id}")).status_code == 404
    reply = await b.post(f"/cases/{case['id']}/reply", text="Xin chào")
    transfer = await b.post(
        f"/cases/{case['id']}/transfer", unit_id="ld-xa-b", reason="Chuyển về phường B xử lý"
    )
    status = await b.post(f"/cases/{case['id']}/status", status="closed")
    note = await b.post(f"/cases/{case['id']}/note", text="ghi chú lén")
    for response in (reply, transfer, status, note):
        assert response.status_code in (400, 404)
        assert "Bán ma túy" not in response.text
    assert await seeded.pool.fetchval("SELECT count(*) FROM case_actions") == 0
    assert await seeded.pool.fetchval("SELECT count(*) FROM outbox") == 0
    row = await seeded.pool.fetchrow("SELECT status, owner_unit_id FROM cases")
    assert tuple(row) == ("new", "ld-xa-a")


async def test_info_copy_is_marked_and_read_only(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a", info=("ld-pc-ma-tuy",))
    drugs = await browser("drugs")
    listing = await drugs.client.get("/inbox")
    assert case["reference"] in listing.text and "Bản sao để biết" in listing.text
    page = await drugs.client.get(f"/cases/{case['id']}")
    assert page.status_code == 200 and "Chỉ đơn vị chủ trì trả lời" in page.text
    refused = await drugs.post(f"/cases/{case['id']}/reply", text="Chúng tôi đã nắm tin")
    assert refused.status_code == 400 and "đơn vị chủ trì" in refused.text
    assert await seeded.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_supervisor_sees_every_unit_of_the_province(browser, seeded: Seeded) -> None:
    one = await make_case(seeded, owner="ld-xa-a")
    two = await make_case(seeded, owner="ld-xa-b")
    elsewhere = await make_case(seeded, owner="other-province")
    sup = await browser("supervisor")
    text = (await sup.client.get("/inbox")).text
    assert one["reference"] in text and two["reference"] in text
    assert elsewhere["reference"] not in text
    admin = await browser("admin")
    assert one["reference"] not in (await admin.client.get("/inbox")).text


async def test_rls_holds_on_a_reused_pooled_connection(database_url: str, seeded: Seeded) -> None:
    case_a = await make_case(seeded, owner="ld-xa-a")
    case_b = await make_case(seeded, owner="ld-xa-b")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with scoped(pool, ("ld-xa-a",)) as conn:
            first_pid = conn.get_server_pid()
            seen = {str(r["id"]) for r in await conn.fetch("SELECT id FROM cases")}
            assert seen == {case_a["id"]}
            assert await conn.fetchval("SELECT count(*) FROM case_messages") == 1
        async with scoped(pool, ("ld-xa-b",)) as conn:
            assert conn.get_server_pid() == first_pid  # the very same server session
            seen = {str(r["id"]) for r in await conn.fetch("SELECT id FROM cases")}
            assert seen == {case_b["id"]}
            contacts = await conn.fetch("SELECT citizen_pseudonym FROM citizen_contacts")
            assert [r["citizen_pseudonym"] for r in contacts] == [case_b["pseudonym"]]
        async with pool.acquire() as conn, conn.transaction():
            # The role without any unit set: nothing, even on the connection just used.
            await conn.execute("SET LOCAL ROLE ketnoi_console")
            assert await conn.fetchval("SELECT current_setting('ketnoi.units', true)") in (
                None,
                "",
            )
            assert await conn.fetchval("SELECT count(*) FROM cases") == 0
            assert await conn.fetchval("SELECT count(*) FROM case_messages") == 0
            assert await conn.fetchval("SELECT count(*) FROM citizen_contacts") == 0
            updated = await conn.execute("UPDATE cases SET status = 'closed'")
            assert updated == "UPDATE 0"
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL ROLE ketnoi_console")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT password_hash FROM accounts")
        async with pool.acquire() as conn:
            role = await conn.fetchrow(
                """SELECT rolbypassrls, rolsuper,
                          (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) AS owns
                   FROM pg_roles r WHERE rolname = 'ketnoi_console'"""
            )
            assert tuple(role) == (False, False, 0)
            forced = await conn.fetch(
                """SELECT relname FROM pg_class WHERE relforcerowsecurity AND relrowsecurity
                   AND relname IN ('cases', 'case_messages', 'triage_decisions',
                                   'citizen_contacts', 'case_actions', 'media_objects')"""
            )
            assert len(forced) == 6
    finally:
        await pool.close()


async def test_audit_log_is_append_only(seeded: Seeded) -> None:
    async with seeded.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("UPDATE audit_log SET action = 'nothing'")
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM audit_log")
    assert await seeded.pool.fetchval("SELECT count(*) FROM audit_log") == len(
        await seeded.pool.fetch("SELECT id FROM accounts")
    )


async def test_identity_reveal_needs_the_role_and_is_audited(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a", name="Nguyễn Thị Hoa", phone="0912345678")
    a = await browser("officer_a")
    page = await a.client.get(f"/cases/{case['id']}")
    assert "Nguyễn Thị Hoa" not in page.text and "0912345678" not in page.text
    assert case["user_id"] not in page.text and case["pseudonym"] not in page.text
    assert "Người báo tin #" in page.text
    refused = await a.post(f"/cases/{case['id']}/reveal", reason="Cần liên hệ xác minh gấp")
    assert refused.status_code == 403
    assert "Nguyễn Thị Hoa" not in refused.text

    sup = await browser("supervisor")
    no_reason = await sup.post(f"/cases/{case['id']}/reveal", reason="xem")
    assert no_reason.status_code == 400 and "0912345678" not in no_reason.text
    shown = await sup.post(
        f"/cases/{case['id']}/reveal", reason="Cần liên hệ người báo tin để bảo vệ nhân chứng"
    )
    assert shown.status_code == 200
    assert "Nguyễn Thị Hoa" in shown.text and "0912345678" in shown.text
    assert case["user_id"] in shown.text
    rows = await seeded.pool.fetch(
        "SELECT action, username, reason FROM audit_log WHERE action LIKE 'identity.%' ORDER BY id"
    )
    assert [(r["action"], r["username"]) for r in rows] == [
        ("identity.reveal.refused", "officer_a"),
        ("identity.reveal", "supervisor"),
    ]
    assert rows[1]["reason"] == "Cần liên hệ người báo tin để bảo vệ nhân chứng"
    audit_page = await sup.client.get("/audit?action=identity.reveal")
    assert "bảo vệ nhân chứng" in audit_page.text
    assert (await a.client.get("/audit")).status_code == 403


async def test_every_case_view_is_audited(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a = await browser("officer_a")
    await a.client.get(f"/cases/{case['id']}")
    await a.client.get(f"/cases/{case['id']}")
    assert (
        await seeded.pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'case.view' AND case_id = $1::uuid",
            case["id"],
        )
        == 2
    )


async def test_nothing_identifying_in_outbox_or_pages(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a", phone="0987654321")
    a = await browser("officer_a")
    assert (await a.post(f"/cases/{case['id']}/reply", text="Cảm ơn bạn")).status_code == 303
    value = bytes(
        await seeded.pool.fetchval(
            "SELECT value FROM outbox WHERE topic = $1", NOTIFY_REQUESTS.name
        )
    )
    assert case["user_id"].encode() not in value
    assert b"0987654321" not in value
