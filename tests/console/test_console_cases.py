"""The inbox and the case page: lanes, filters, diacritic-insensitive search, escaping, and
the officers' actions with what they send to the citizen (through the outbox)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    NOTIFY_RESULTS,
    REPORTS_TRIAGED,
    DeliveryErrorKind,
    DeliveryStatus,
    NotifyKind,
    NotifyResult,
)
from ketnoi_shared.messaging import encode

from .conftest import Seeded, make_case

pytestmark = pytest.mark.integration

# From the Big List of Naughty Strings: markup, template syntax, SQL, control characters.
NAUGHTY = [
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}} {% raw %}",
    "'; DROP TABLE cases; --",
    "<svg/onload=alert(1)>",
    "javascript:alert(1)",
    "\u202eRTL override\u202c",
    "Ṱ̺̺̕o͞ ̷i̲̬͇̪͙n̝̗͕v̟̜̘̦͟o̶̙̰̠kè͚̮̺̪̹̱̤ ̖t̝͕̳̣̻̪͞h̼͓̲̦̳̘̲e͇̣̰̦̬͎ ̢̼̻̱̘h͚͎͙̜̣̲ͅi̦̲̣̰̤v̻͍e̺̭̳̪̰-m̢iͅn̖̺̞̲̯̰d̵̼̟͙̩̼̘̳",
]


async def outbox(seeded: Seeded, topic: str) -> list[dict]:
    return [
        json.loads(bytes(r["value"]))
        for r in await seeded.pool.fetch(
            "SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topic
        )
    ]


async def test_lanes_filters_and_emergencies_first(browser, seeded: Seeded) -> None:
    normal = await make_case(seeded, owner="ld-xa-a", text="Xe máy đậu chắn lối đi")
    urgent = await make_case(
        seeded,
        owner="ld-xa-a",
        text="Có người cầm dao đe dọa ngay trước cổng chợ",
        urgency="emergency",
        category="crime",
        subcategory="weapons",
    )
    question = await make_case(
        seeded,
        owner="ld-xa-a",
        text="Làm căn cước mất bao lâu",
        lane="procedures",
        category="admin",
        subcategory="id_card",
    )
    a = await browser("officer_a")
    tips = (await a.client.get("/inbox/rows")).text
    refs = re.findall(r'data-reference="([^"]+)"', tips)
    assert refs == [urgent["reference"], normal["reference"]]  # emergency pinned on top
    assert 'class="case-row emergency' in tips
    procedures = (await a.client.get("/inbox/rows?lane=procedures")).text
    assert re.findall(r'data-reference="([^"]+)"', procedures) == [question["reference"]]
    only_crime = (await a.client.get("/inbox/rows?category=crime")).text
    assert re.findall(r'data-reference="([^"]+)"', only_crime) == [urgent["reference"]]
    # Opening a case marks it read.
    assert len(re.findall(r"unread", (await a.client.get("/inbox/rows?unread=1")).text)) == 2
    await a.client.get(f"/cases/{normal['id']}")
    unread = (await a.client.get("/inbox/rows?unread=1")).text
    assert re.findall(r'data-reference="([^"]+)"', unread) == [urgent["reference"]]


async def test_search_ignores_diacritics(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a", text="Đánh bạc ở quán nước đường Hùng Vương")
    await make_case(seeded, owner="ld-xa-a", text="Tai nạn giao thông ở đèo Prenn")
    a = await browser("officer_a")
    for query in ("đánh bạc", "danh bac", "DANH BAC", "hung vuong", case["reference"].lower()):
        rows = (await a.client.get("/inbox/rows", params={"q": query})).text
        assert re.findall(r'data-reference="([^"]+)"', rows) == [case["reference"]], query
    assert "case-row" not in (await a.client.get("/inbox/rows", params={"q": "100%_"})).text


async def test_citizen_text_is_escaped(browser, seeded: Seeded) -> None:
    cases = [await make_case(seeded, owner="ld-xa-a", text=s) for s in NAUGHTY]
    a = await browser("officer_a")
    listing = (await a.client.get("/inbox")).text
    page = (await a.client.get(f"/cases/{cases[0]['id']}")).text
    second = (await a.client.get(f"/cases/{cases[1]['id']}")).text
    for html in (listing, page, second):
        assert "<script>alert" not in html
        assert "<img src=x" not in html and "<svg/onload" not in html
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in second
    assert "{{7*7}}" in listing  # shown as text, never evaluated


async def test_reply_goes_through_the_outbox(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a = await browser("officer_a")
    page = await a.client.get(f"/cases/{case['id']}")
    assert "Trong 48 giờ" in page.text and 'id="reply-send"' in page.text
    sent = await a.post(f"/cases/{case['id']}/reply", text="Cảm ơn bạn, chúng tôi đang xác minh.")
    assert sent.status_code == 303
    [request] = await outbox(seeded, NOTIFY_REQUESTS.name)
    assert request["kind"] == "reply" and request["case_id"] == case["id"]
    assert request["text"] == "Cảm ơn bạn, chúng tôi đang xác minh."
    assert request["recipient"]["pseudonym"] == case["pseudonym"]
    assert request["recipient"]["sealed_user_id"].startswith("sealed:")
    assert request["requested_by"] == f"officer:{seeded.accounts['officer_a']}"
    assert await seeded.pool.fetchval("SELECT status FROM cases") == "acknowledged"
    timeline = (await a.client.get(f"/cases/{case['id']}/timeline")).text
    assert "Cảm ơn bạn, chúng tôi đang xác minh." in timeline and "Đang gửi" in timeline


async def test_delivery_result_shows_on_the_timeline(
    browser, seeded: Seeded, kafka_bootstrap: str
) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a = await browser("officer_a")
    await a.post(f"/cases/{case['id']}/reply", text="Bạn cho biết thêm thời gian nhé.")
    [request] = await outbox(seeded, NOTIFY_REQUESTS.name)
    result = NotifyResult(
        event_id=f"result:{request['event_id']}:1",
        occurred_at=datetime.now(UTC),
        correlation_id=request["correlation_id"],
        request_id=request["event_id"],
        oa_id=request["oa_id"],
        recipient_pseudonym=case["pseudonym"],
        case_id=case["id"],
        kind=NotifyKind.REPLY,
        attempt=1,
        status=DeliveryStatus.SENT,
        zalo_message_ids=("abc",),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(NOTIFY_RESULTS.name, encode(result), key=b"k")
        await producer.send_and_wait(NOTIFY_RESULTS.name, encode(result), key=b"k")  # again
    finally:
        await producer.stop()
    for _ in range(150):
        status = await seeded.pool.fetchval(
            "SELECT status FROM delivery_results WHERE request_id = $1", request["event_id"]
        )
        if status:
            break
        await asyncio.sleep(0.1)
    assert status == "sent"
    assert await seeded.pool.fetchval("SELECT count(*) FROM delivery_results") == 1
    timeline = (await a.client.get(f"/cases/{case['id']}/timeline")).text
    assert 'data-status="sent"' in timeline and "Đã gửi" in timeline

    # A failed delivery says why, in the notifier's plain Vietnamese.
    await a.post(f"/cases/{case['id']}/reply", text="Bạn còn ở đó không?")
    second = (await outbox(seeded, NOTIFY_REQUESTS.name))[-1]
    failed = result.model_copy(
        update={
            "event_id": f"result:{second['event_id']}:1",
            "request_id": second["event_id"],
            "status": DeliveryStatus.FAILED,
            "zalo_message_ids": (),
            "error_code": -230,
            "error_kind": DeliveryErrorKind.OUTSIDE_WINDOW,
            "error_message": "Người dân không tương tác với OA trong 7 ngày qua.",
        }
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(NOTIFY_RESULTS.name, encode(failed), key=b"k")
    finally:
        await producer.stop()
    for _ in range(150):
        if await seeded.pool.fetchval(
            "SELECT error_message FROM delivery_results WHERE request_id = $1",
            second["event_id"],
        ):
            break
        await asyncio.sleep(0.1)
    timeline = (await a.client.get(f"/cases/{case['id']}/timeline")).text
    assert "Gửi không thành công: Người dân không tương tác với OA trong 7 ngày qua." in timeline
    assert "outside_window" not in timeline


async def test_reply_window_closed_after_seven_days(browser, seeded: Seeded) -> None:
    case = await make_case(
        seeded, owner="ld-xa-a", last_interaction=datetime.now(UTC) - timedelta(days=8)
    )
    a = await browser("officer_a")
    page = (await a.client.get(f"/cases/{case['id']}")).text
    assert 'id="reply-blocked"' in page and 'id="reply-send"' not in page
    refused = await a.post(f"/cases/{case['id']}/reply", text="Xin chào")
    assert refused.status_code == 400 and "7 ngày" in refused.text
    assert await outbox(seeded, NOTIFY_REQUESTS.name) == []
    paid = await make_case(
        seeded, owner="ld-xa-a", last_interaction=datetime.now(UTC) - timedelta(days=3)
    )
    assert "Quá 48 giờ" in (await a.client.get(f"/cases/{paid['id']}")).text


async def test_transfer_tells_the_citizen_and_moves_the_case(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a, b = await browser("officer_a"), await browser("officer_b")
    short = await a.post(f"/cases/{case['id']}/transfer", unit_id="ld-xa-b", reason="vì")
    assert short.status_code == 400 and "lý do" in short.text
    moved = await a.post(
        f"/cases/{case['id']}/transfer",
        unit_id="ld-xa-b",
        reason="Sự việc xảy ra trên địa bàn phường B",
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/inbox?moved=1"
    assert (await a.client.get(f"/cases/{case['id']}")).status_code == 404
    assert case["reference"] in (await b.client.get("/inbox/rows")).text
    [notice] = await outbox(seeded, NOTIFY_REQUESTS.name)
    assert notice["kind"] == "transfer" and "Công an phường B" in notice["text"]
    assert case["reference"] in notice["text"]
    [published] = await outbox(seeded, REPORTS_TRIAGED.name)
    assert published["owner_unit_id"] == "ld-xa-b"
    row = await seeded.pool.fetchrow("SELECT owner_unit_id, owner_set_by FROM cases")
    assert row["owner_unit_id"] == "ld-xa-b"
    assert row["owner_set_by"] == f"officer:{seeded.accounts['officer_a']}"


async def test_reclassify_is_kept_as_feedback(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a = await browser("officer_a")
    wrong = await a.post(
        f"/cases/{case['id']}/reclassify",
        category="traffic",
        subcategory="gambling",
        urgency="high",
    )
    assert wrong.status_code == 400
    done = await a.post(
        f"/cases/{case['id']}/reclassify",
        category="crime",
        subcategory="loan_shark",
        urgency="high",
    )
    assert done.status_code == 303
    decision = await seeded.pool.fetchrow("SELECT * FROM triage_decisions")
    assert decision["decided_by"] == f"operator:{seeded.accounts['officer_a']}"
    assert (decision["category"], decision["subcategory"], decision["urgency"]) == (
        "crime",
        "loan_shark",
        "high",
    )
    case_row = await seeded.pool.fetchrow("SELECT category, decided_by, version FROM cases")
    assert case_row["category"] == "crime" and case_row["decided_by"].startswith("operator:")


async def test_status_flow_notes_and_assignment(browser, seeded: Seeded) -> None:
    case = await make_case(seeded, owner="ld-xa-a")
    a = await browser("officer_a")
    assert (await a.post(f"/cases/{case['id']}/status", status="verifying")).status_code == 303
    assert (await a.post(f"/cases/{case['id']}/status", status="new")).status_code == 400
    no_reason = await a.post(f"/cases/{case['id']}/status", status="rejected")
    assert no_reason.status_code == 400
    await a.post(f"/cases/{case['id']}/note", text="Đã cử tổ công tác đến kiểm tra")
    lead = seeded.accounts["lead_a"]
    assert (await a.post(f"/cases/{case['id']}/assign", account_id=str(lead))).status_code == 303
    other = seeded.accounts["officer_b"]
    assert (await a.post(f"/cases/{case['id']}/assign", account_id=str(other))).status_code == 400
    rejected = await a.post(
        f"/cases/{case['id']}/status", status="rejected", reason="Tin báo không có cơ sở xác minh"
    )
    assert rejected.status_code == 303
    row = await seeded.pool.fetchrow(
        "SELECT status, status_reason, assignee_id, closed_at FROM cases"
    )
    assert row["status"] == "rejected" and row["assignee_id"] == lead
    assert row["status_reason"] == "Tin báo không có cơ sở xác minh" and row["closed_at"]
    kinds = [
        r["kind"] for r in await seeded.pool.fetch("SELECT kind FROM case_actions ORDER BY id")
    ]
    assert kinds == ["status", "note", "assign", "status"]
    page = (await a.client.get(f"/cases/{case['id']}")).text
    assert "Đã cử tổ công tác đến kiểm tra" in page and "Không xử lý" in page


async def test_preview_is_the_latest_text_not_an_empty_attachment_message(
    browser, seeded: Seeded
) -> None:
    case = await make_case(seeded, owner="ld-xa-a", text="Có trộm xe máy ở hẻm 5")
    await seeded.pool.execute(
        """INSERT INTO case_messages (case_id, event_id, event_name, text, attachments,
               occurred_at)
           VALUES ($1::uuid, 'loc-1', 'user_send_location', '',
                   '[{"type": "location", "location": {"latitude": 11.9, "longitude": 108.4}}]',
                   now() + interval '1 second')""",
        case["id"],
    )
    a = await browser("officer_a")
    assert "Có trộm xe máy ở hẻm 5" in (await a.client.get("/inbox/rows")).text
