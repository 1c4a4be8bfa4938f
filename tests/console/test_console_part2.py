"""Deadlines, escalations raised once, dashboards for leads and supervisors, CSV with
pseudonyms only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from ketnoi_console.clocks import Policy
from ketnoi_console.escalation import raise_escalations

from .conftest import Seeded, make_case

pytestmark = pytest.mark.integration


async def _age(seeded: Seeded, case_id: str, **delta: float) -> None:
    await seeded.pool.execute(
        "UPDATE cases SET opened_at = opened_at - $2::interval WHERE id = $1::uuid",
        case_id,
        timedelta(**delta),
    )


async def test_emergency_unanswered_escalates_once_to_lead_and_duty_desk(
    browser, seeded: Seeded
) -> None:
    await seeded.pool.execute(
        """INSERT INTO accounts (username, display_name, role, unit_id, password_hash)
           SELECT 'desk', 'Trực ban', 'officer', 'ld-truc-ban', password_hash
           FROM accounts WHERE username = 'officer_a'"""
    )
    urgent = await make_case(
        seeded,
        owner="ld-xa-a",
        urgency="emergency",
        category="crime",
        subcategory="weapons",
        text="Có người cầm dao đe dọa trước cổng chợ",
    )
    calm = await make_case(seeded, owner="ld-xa-a")
    policy = Policy.load()
    assert await raise_escalations(seeded.pool, policy) == 0  # not late yet
    await _age(seeded, urgent["id"], minutes=20)
    await _age(seeded, calm["id"], minutes=20)
    assert await raise_escalations(seeded.pool, policy) == 1
    assert await raise_escalations(seeded.pool, policy) == 0  # fires once
    rows = await seeded.pool.fetch("SELECT case_id::text, kind FROM escalations")
    assert [(r["case_id"], r["kind"]) for r in rows] == [(urgent["id"], "emergency_unanswered")]
    info = await seeded.pool.fetchval(
        "SELECT info_unit_ids FROM cases WHERE id = $1::uuid", urgent["id"]
    )
    assert "ld-truc-ban" in info

    lead, desk, other = await browser("lead_a"), await browser("desk"), await browser("officer_b")
    for who in (lead, desk):
        page = (await who.client.get("/alerts")).text
        assert urgent["reference"] in page and "Tin khẩn cấp chưa được trả lời" in page
        assert re.search(r'id="nav-alerts">Cảnh báo <span class="badge">1</span>', page)
    assert urgent["reference"] not in (await other.client.get("/alerts")).text
    seen = await lead.post(f"/alerts/{urgent['id']}/emergency_unanswered/seen")
    assert seen.status_code == 303
    assert 'class="badge"' not in (await lead.client.get("/inbox")).text


async def test_reply_window_closing_escalates(seeded: Seeded) -> None:
    case = await make_case(
        seeded, owner="ld-xa-a", last_interaction=datetime.now(UTC) - timedelta(days=6, hours=2)
    )
    fresh = await make_case(seeded, owner="ld-xa-a")
    assert fresh
    assert await raise_escalations(seeded.pool, Policy.load()) == 1
    kind = await seeded.pool.fetchval(
        "SELECT kind FROM escalations WHERE case_id = $1::uuid", case["id"]
    )
    assert kind == "reply_window_closing"


async def test_deadlines_view_and_inbox_filters(browser, seeded: Seeded) -> None:
    late = await make_case(seeded, owner="ld-xa-a")
    soon = await make_case(seeded, owner="ld-xa-a")
    fine = await make_case(seeded, owner="ld-xa-a")
    await _age(seeded, late["id"], hours=30)
    await _age(seeded, soon["id"], hours=20)
    a = await browser("officer_a")
    page = (await a.client.get("/deadlines")).text
    overdue_part, due_part = page.split('id="due-soon"')
    assert late["reference"] in overdue_part and soon["reference"] not in overdue_part
    assert soon["reference"] in due_part and fine["reference"] not in page
    rows = (await a.client.get("/inbox/rows?overdue=1")).text
    assert re.findall(r'data-reference="([^"]+)"', rows) == [late["reference"]]
    rows = (await a.client.get("/inbox/rows?due_soon=1")).text
    assert re.findall(r'data-reference="([^"]+)"', rows) == [soon["reference"]]
    case_page = (await a.client.get(f"/cases/{late['id']}")).text
    assert 'data-clock="first_reply"' in case_page and "quá hạn" in case_page


async def test_lead_extends_the_legal_deadline(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a", category="crime", subcategory="theft")
    officer, lead = await browser("officer_a"), await browser("lead_a")
    refused = await officer.post(
        f"/cases/{case['id']}/extend", reason="Cần thêm thời gian xác minh"
    )
    assert refused.status_code == 400
    for _ in range(2):
        ok = await lead.post(f"/cases/{case['id']}/extend", reason="Cần giám định tài sản bị trộm")
        assert ok.status_code == 303
    third = await lead.post(f"/cases/{case['id']}/extend", reason="Cần giám định thêm lần nữa")
    assert third.status_code == 400 and "tối đa" in third.text
    assert (
        await seeded.pool.fetchval("SELECT count(*) FROM case_actions WHERE kind = 'extend'") == 2
    )


async def test_dashboards_for_leads_and_supervisors(browser, seeded: Seeded) -> None:
    own = await make_case(seeded, owner="ld-xa-a", category="crime", subcategory="theft")
    await make_case(seeded, owner="ld-xa-b", category="traffic", subcategory="accident")
    await make_case(
        seeded,
        owner="ld-xa-a",
        lane="procedures",
        category="admin",
        subcategory="id_card",
        text="làm cccd mất bao lâu",
    )
    lead, sup, officer = (
        await browser("lead_a"),
        await browser("supervisor"),
        await browser("officer_a"),
    )
    assert (await officer.client.get("/dashboard")).status_code == 403
    assert (await officer.client.get("/dashboard.csv")).status_code == 403
    lead_page = (await lead.client.get("/dashboard")).text
    assert "<svg" in lead_page and "Tin báo mỗi ngày theo nhóm" in lead_page
    assert "Công an phường A" in lead_page and "Công an phường B" not in lead_page
    assert re.search(r"<td>Đang chờ</td><td>1</td>", lead_page)
    sup_page = (await sup.client.get("/dashboard")).text
    assert "Công an phường A" in sup_page and "Công an phường B" in sup_page
    export = await lead.client.get("/dashboard.csv")
    assert export.status_code == 200
    assert own["reference"] in export.text and "Người báo tin #" in export.text
    assert own["pseudonym"] not in export.text and own["user_id"] not in export.text
    assert (
        await seeded.pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'export.dashboard'"
        )
        == 1
    )
