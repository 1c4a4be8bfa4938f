"""Triage's consumer logic on a real PostgreSQL: cases, grouping, acknowledgements, routing."""

from __future__ import annotations

import asyncpg

from ketnoi_shared.contracts import NotifyRequest, TriagedCase
from ketnoi_triage.service import TriageService

from .conftest import OA, EventFactory, later


async def handle(pool: asyncpg.Pool, service: TriageService, event) -> str:
    async with pool.acquire() as conn:
        return await service.handle(conn, event)


async def outbox(pool: asyncpg.Pool, topic: str) -> list[bytes]:
    rows = await pool.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topic)
    return [bytes(r["value"]) for r in rows]


async def test_text_photo_location_make_one_case_and_one_acknowledgement(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    text = events.make(
        "user_send_text",
        at=later(0),
        text="Có nhóm thanh niên đang chích hút trong nhà hoang cuối hẻm, tối nào cũng tụ tập",
    )
    photo = events.make("user_send_image", at=later(1))
    place = events.make("user_send_location", at=later(2))
    assert await handle(pool, triage_service, text) == "opened"
    assert await handle(pool, triage_service, photo) == "joined"
    assert await handle(pool, triage_service, place) == "joined"
    cases = await pool.fetch("SELECT * FROM cases")
    assert len(cases) == 1
    case = cases[0]
    assert case["message_count"] == 3
    assert case["category"] == "social_evils"
    assert case["reference"].startswith("LD-")
    assert case["owner_unit_id"] == "ld-xa-xuan-huong"  # the OA's unit (no ward resolved)
    assert "ld-pc-ma-tuy" in case["info_unit_ids"]
    acks = [NotifyRequest.model_validate_json(v) for v in await outbox(pool, "notify.requests.v1")]
    assert len(acks) == 1
    ack = acks[0]
    assert case["reference"] in ack.text
    assert "bí mật" in ack.text
    assert ack.recipient.pseudonym == case["citizen_pseudonym"]
    assert ack.oa_id == OA
    versions = [
        TriagedCase.model_validate_json(v) for v in await outbox(pool, "reports.triaged.v1")
    ]
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[-1].message_count == 3


async def test_out_of_order_arrival_joins_the_same_case(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    photo_first = events.make("user_send_image", at=later(0))
    text_later = events.make("user_send_text", at=later(5), text="xe máy bị trộm ở chợ")
    # The text is delivered first, the photo (sent earlier) arrives afterwards.
    await handle(pool, triage_service, text_later)
    await handle(pool, triage_service, photo_first)
    case = await pool.fetchrow("SELECT * FROM cases")
    assert await pool.fetchval("SELECT count(*) FROM cases") == 1
    assert case["message_count"] == 2
    assert case["opened_at"] == later(0)
    assert case["last_message_at"] == later(5)


async def test_quiet_gap_and_closed_case_open_new_cases(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    await handle(
        pool, triage_service, events.make("user_send_text", at=later(0), text="có trộm vào nhà tôi")
    )
    await handle(
        pool, triage_service, events.make("user_send_text", at=later(120), text="lại có trộm nữa")
    )
    assert await pool.fetchval("SELECT count(*) FROM cases") == 2
    await pool.execute("UPDATE cases SET status = 'closed'")
    await handle(
        pool, triage_service, events.make("user_send_text", at=later(121), text="bổ sung thông tin")
    )
    assert await pool.fetchval("SELECT count(*) FROM cases") == 3


async def test_redelivered_event_changes_nothing(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    event = events.make("user_send_text", text="cướp giật điện thoại ở chợ Đà Lạt")
    assert await handle(pool, triage_service, event) == "opened"
    before = await pool.fetchval("SELECT count(*) FROM outbox")
    assert await handle(pool, triage_service, event) == "duplicate"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before
    assert await pool.fetchval("SELECT count(*) FROM case_messages") == 1


async def test_emergency_and_disaster_acknowledgements_put_numbers_first(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    await handle(
        pool,
        triage_service,
        events.make(
            "user_send_text",
            user="8000000000000000001",
            text="Cứu với!! đang có nhóm cầm dao chém nhau ở quán nhậu, 1 người máu chảy nhiều",
        ),
    )
    await handle(
        pool,
        triage_service,
        events.make(
            "user_send_text",
            user="8000000000000000002",
            text="cháy nhà!!! cháy nhà ở hẻm 21, lửa bốc lên nóc rồi",
        ),
    )
    acks = [NotifyRequest.model_validate_json(v) for v in await outbox(pool, "notify.requests.v1")]
    assert len(acks) == 2
    assert acks[0].text.startswith("Nếu đang có nguy hiểm, hãy gọi ngay 113")
    assert acks[1].text.startswith("Nếu có cháy")
    assert "114" in acks[1].text.split(".")[0]
    urgent = await pool.fetch("SELECT urgency, info_unit_ids FROM cases ORDER BY opened_at")
    assert all(r["urgency"] == "emergency" for r in urgent)
    assert all("ld-truc-ban" in r["info_unit_ids"] for r in urgent)


async def test_procedure_question_goes_to_its_lane_without_tip_acknowledgement(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    await handle(
        pool,
        triage_service,
        events.make(
            "user_send_text", text="cho em hỏi làm căn cước cho con 10 tuổi cần giấy tờ gì ạ"
        ),
    )
    case = await pool.fetchrow("SELECT * FROM cases")
    assert case["category"] == "admin"
    assert case["lane"] == "procedures"
    assert await outbox(pool, "notify.requests.v1") == []


async def test_greeting_gets_one_friendly_reply_a_day(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    for minutes in (0, 60, 180):
        await handle(
            pool,
            triage_service,
            events.make("user_send_text", at=later(minutes), text="alo, xin chào"),
        )
    await handle(
        pool,
        triage_service,
        events.make("user_send_text", at=later(60 * 24 + 5), text="xin chào các anh"),
    )
    replies = [
        NotifyRequest.model_validate_json(v) for v in await outbox(pool, "notify.requests.v1")
    ]
    assert [r.kind.value for r in replies] == ["greeting", "greeting"]
    assert "#cong_vu" in replies[0].text


async def test_follow_registry(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    await handle(pool, triage_service, events.make("follow", at=later(0)))
    await handle(pool, triage_service, events.make("unfollow", at=later(10)))
    # A late, older follow does not override the newer unfollow.
    late = events.make("follow", at=later(5))
    await handle(pool, triage_service, late)
    row = await pool.fetchrow("SELECT * FROM followers")
    assert row["following"] is False
    assert row["oa_id"] == OA


async def test_operator_decision_wins_over_automatic_triage(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    await handle(
        pool,
        triage_service,
        events.make("user_send_text", at=later(0), text="nhà hàng xóm cãi nhau to quá"),
    )
    case = await pool.fetchrow("SELECT * FROM cases")
    await pool.execute(
        """INSERT INTO triage_decisions (case_id, version, decided_by, category, subcategory,
               urgency, explanation)
           VALUES ($1, $2, 'operator:42', 'crime', 'assault', 'high', 'Cán bộ xác minh')""",
        case["id"],
        case["version"],
    )
    await handle(
        pool, triage_service, events.make("user_send_text", at=later(2), text="giờ họ im rồi")
    )
    case = await pool.fetchrow("SELECT * FROM cases")
    assert (case["category"], case["subcategory"], case["decided_by"]) == (
        "crime",
        "assault",
        "operator:42",
    )
    last = TriagedCase.model_validate_json((await outbox(pool, "reports.triaged.v1"))[-1])
    assert last.decided_by == "operator:42"


async def test_a_batch_groups_like_one_by_one(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    """One transaction for many events: chained messages 25 minutes apart stay one case, a
    duplicate inside the batch counts once, another citizen gets their own case."""
    first = events.make("user_send_text", at=later(0), text="có trộm vào nhà tôi tối qua")
    batch = [
        first,
        events.make("user_send_image", at=later(25)),
        events.make("user_send_text", at=later(50), text="tôi gửi thêm ảnh camera"),
        first,
        events.make(
            "user_send_text", user="8999999999999999999", at=later(1), text="xe máy bị trộm ở chợ"
        ),
    ]
    async with pool.acquire() as conn:
        outcomes = await triage_service.handle_batch(conn, batch)
    assert outcomes == ["opened", "joined", "joined", "duplicate", "opened"]
    rows = await pool.fetch("SELECT * FROM cases ORDER BY message_count DESC")
    assert [r["message_count"] for r in rows] == [3, 1]
    assert rows[0]["opened_at"] == later(0)
    assert rows[0]["last_message_at"] == later(50)
    assert await pool.fetchval("SELECT count(*) FROM case_messages") == 4
    acks = await outbox(pool, "notify.requests.v1")
    assert len(acks) == 2, "one acknowledgement per case"
    # The same batch again (a redelivery after a crash before the offset commit): no effect.
    async with pool.acquire() as conn:
        assert set(await triage_service.handle_batch(conn, batch)) == {"duplicate"}
    assert await pool.fetchval("SELECT count(*) FROM case_messages") == 4
    assert len(await outbox(pool, "notify.requests.v1")) == 2


async def test_menu_queries_are_left_to_the_news_service(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    for i, text in enumerate(("#tin_tuc", "tin tức", "#cong_vu", "#lien_he")):
        outcome = await handle(
            pool, triage_service, events.make("user_send_text", at=later(i), text=text)
        )
        assert outcome == "menu_query", text
    assert await pool.fetchval("SELECT count(*) FROM cases") == 0
    assert await outbox(pool, "notify.requests.v1") == []
    # A tip that mentions the news is still a tip.
    tip = "tin tức gì đâu, có đứa trộm xe máy trước nhà tôi vừa chạy về hướng chợ"
    assert (
        await handle(pool, triage_service, events.make("user_send_text", at=later(9), text=tip))
        == "opened"
    )


async def test_search_text_and_submitted_identity_are_kept_for_the_console(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory, protector
):
    await handle(
        pool,
        triage_service,
        events.make("user_send_text", at=later(0), text="Đánh bạc ở quán nước đường Hùng Vương"),
    )
    await handle(
        pool, triage_service, events.make("user_send_text", at=later(1), text="Đông người lắm")
    )
    search = await pool.fetchval("SELECT search_text FROM cases")
    assert "danh bac o quan nuoc duong hung vuong" in search and "dong nguoi lam" in search
    await handle(pool, triage_service, events.make("user_submit_info", at=later(2)))
    contact = await pool.fetchrow("SELECT sealed_name, sealed_phone FROM citizen_contacts")
    assert contact["sealed_name"].startswith("sealed:")
    assert contact["sealed_phone"].startswith("sealed:")
    info = events.make("user_submit_info", at=later(3))
    assert protector.unseal(contact["sealed_phone"], purpose="phone") == protector.unseal(
        info.submitted_info.sealed_phone, purpose="phone"
    )


async def test_an_officers_transfer_stands_when_the_citizen_writes_again(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    await handle(
        pool,
        triage_service,
        events.make("user_send_text", at=later(0), text="Có người đánh nhau ở cổng chợ Đà Lạt"),
    )
    case = await pool.fetchrow("SELECT * FROM cases")
    await pool.execute(
        "UPDATE cases SET owner_unit_id = 'ld-pc-hinh-su', owner_set_by = 'officer:7' "
        "WHERE id = $1",
        case["id"],
    )
    await handle(
        pool, triage_service, events.make("user_send_text", at=later(1), text="giờ vẫn còn đánh")
    )
    assert await pool.fetchval("SELECT owner_unit_id FROM cases") == "ld-pc-hinh-su"
    last = TriagedCase.model_validate_json((await outbox(pool, "reports.triaged.v1"))[-1])
    assert last.owner_unit_id == "ld-pc-hinh-su"


async def test_a_case_that_opens_with_a_photo_gets_one_acknowledgement_and_no_greeting(
    pool: asyncpg.Pool, triage_service: TriageService, events: EventFactory
):
    """A photo sent before the text of the tip (Zalo delivers them out of order, or the
    citizen sends the picture first): an empty text reads as a greeting to the classifier,
    but a case with an attachment is not greeted — the tip is acknowledged once."""
    photo = events.make("user_send_image", at=later(0))
    text = events.make(
        "user_send_text",
        at=later(1),
        text="Ảnh chụp hiện trường, có người đánh nhau chảy máu ở đầu hẻm, công an xuống giúp",
    )
    assert await handle(pool, triage_service, photo) == "opened"
    assert await handle(pool, triage_service, text) == "joined"
    replies = [
        NotifyRequest.model_validate_json(v) for v in await outbox(pool, "notify.requests.v1")
    ]
    assert [r.kind.value for r in replies] == ["ack"]
