"""The news consumers' logic on a real PostgreSQL: the welcome once per follow, menu queries,
"Tin tức" for the OA's province, procedure answers and the hand-over to officers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from ketnoi_news.service import NewsService
from ketnoi_shared.contracts import (
    CaseStatus,
    Category,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    TriagedCase,
    Urgency,
)
from ketnoi_shared.identity import IdentityProtector

from ..triage.conftest import EventFactory, later
from .conftest import OA


async def handle(pool: asyncpg.Pool, service: NewsService, event) -> str:
    async with pool.acquire() as conn:
        return await service.handle_event(conn, event)


async def requests(pool: asyncpg.Pool) -> list[NotifyRequest]:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE topic = 'notify.requests.v1' ORDER BY id"
    )
    return [NotifyRequest.model_validate_json(bytes(r["value"])) for r in rows]


async def test_welcome_once_per_follow(
    pool: asyncpg.Pool, units: None, news_service: NewsService, events: EventFactory
):
    follow = events.make("follow", at=later(0))
    assert await handle(pool, news_service, follow) == "welcomed"
    assert await handle(pool, news_service, follow) == "duplicate"  # redelivery
    # Zalo delivers the same follow again as a new event (a retry with a new id).
    again = follow.model_copy(update={"event_id": uuid.uuid4().hex})
    assert await handle(pool, news_service, again) == "already_welcomed"
    # Opening the chat after following: the same follow, no second welcome.
    assert (
        await handle(pool, news_service, events.make("user_click_chatnow", at=later(1)))
        == "already_welcomed"
    )
    sent = await requests(pool)
    assert [r.kind for r in sent] == [NotifyKind.WELCOME]
    text = sent[0].text
    for needed in (
        "Công an phường Xuân Hương - Đà Lạt",
        "113",
        "114",
        "115",
        "bí mật",
        "#tin_tuc",
        "#cong_vu",
        "#phan_anh",
        "#lien_he",
        "Vị trí",
        "video",
    ):
        assert needed in text, needed
    # Unfollow then follow again: a new follow, a new welcome.
    assert await handle(pool, news_service, events.make("unfollow", at=later(60))) == "unfollowed"
    assert await handle(pool, news_service, events.make("follow", at=later(61))) == "welcomed"
    assert len(await requests(pool)) == 2
    assert len({r.event_id for r in await requests(pool)}) == 2


async def test_first_chat_without_follow_is_welcomed_once(
    pool: asyncpg.Pool, units: None, news_service: NewsService, events: EventFactory
):
    assert (
        await handle(pool, news_service, events.make("user_click_chatnow", at=later(0)))
        == "welcomed"
    )
    # Following afterwards is the same first contact: no second welcome.
    assert await handle(pool, news_service, events.make("follow", at=later(5))) == (
        "already_welcomed"
    )
    assert len(await requests(pool)) == 1


async def test_menu_queries_and_news_for_the_province(
    pool: asyncpg.Pool, units: None, news_service: NewsService, events: EventFactory
):
    await pool.executemany(
        """INSERT INTO news_items (item_id, source_id, url, url_key, title, title_key,
               published_at, province_code)
           VALUES ($1, $2, $3, $3, $4, $1, $5, $6)""",
        [
            ("a", "bca", "https://bca.vn/a", "Cảnh báo giả danh công an", later(-60), None),
            ("b", "ld", "https://ld.vn/b", "Truy tìm đối tượng cướp giật", later(-30), "68"),
            ("c", "hn", "https://hn.vn/c", "Tin của tỉnh khác", later(-10), "01"),
        ],
    )
    outcomes = [
        await handle(pool, news_service, events.make("user_send_text", at=later(i), text=t))
        for i, t in enumerate(["#tin_tuc", "tin tuc", "#cong_vu", "#phan_anh", "#lien_he"])
    ]
    assert outcomes == [
        "menu:tin_tuc",
        "menu:tin_tuc",
        "menu:cong_vu",
        "menu:phan_anh",
        "menu:lien_he",
    ]
    news, news2, procedures, report, contacts = await requests(pool)
    assert news.kind is NotifyKind.NEWS and news.oa_id == OA
    assert "Truy tìm đối tượng cướp giật" in news.text and "https://ld.vn/b" in news.text
    assert "Cảnh báo giả danh công an" in news.text  # national
    assert "Tin của tỉnh khác" not in news.text
    assert news.text.index("Truy tìm") < news.text.index("Cảnh báo giả danh")  # latest first
    assert "#tin_tuc" in news2.text
    assert "căn cước" in procedures.text.lower() and "hộ chiếu" in procedures.text.lower()
    assert "Vị trí" in report.text and "bí mật" in report.text
    assert all(n in contacts.text for n in ("113", "114", "115"))
    assert "Công an phường Xuân Hương - Đà Lạt" in contacts.text
    # A tip or an ordinary message is not this service's business: nothing claimed.
    tip = events.make("user_send_text", at=later(9), text="có người bán ma túy ở hẻm 5")
    assert await handle(pool, news_service, tip) == "ignored"
    assert len(await requests(pool)) == 5


def case(protector: IdentityProtector, question: str, *, version: int = 1) -> TriagedCase:
    user = "8123456789012345678"
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return TriagedCase(
        event_id=f"case:c1:v{version}",
        occurred_at=now,
        correlation_id="corr-1",
        case_id="0b7a6a52-54a1-4a44-9a39-6f1b0d7f2a10",
        reference="LD-ABCDE",
        version=version,
        oa_id=OA,
        citizen_pseudonym=protector.pseudonym(user),
        status=CaseStatus.NEW,
        category=Category.ADMIN,
        subcategory="id_card",
        urgency=Urgency.LOW,
        confidence=0.9,
        message_count=1,
        opened_at=now,
        last_message_at=now,
        question=question,
        question_msg_id=f"msg-{version}",
        reply_to=NotifyRecipient(
            pseudonym=protector.pseudonym(user),
            sealed_user_id=protector.seal(user, purpose="zalo_user_id"),
        ),
    )


async def test_procedure_question_answered_once(
    pool: asyncpg.Pool, news_service: NewsService, protector: IdentityProtector
):
    question = case(protector, "lam cccd mat bao lau")
    async with pool.acquire() as conn:
        assert await news_service.handle_case(conn, question) == "answered"
        assert await news_service.handle_case(conn, question) == "duplicate"
        # A later version of the case carrying the same message: not answered again.
        later_version = question.model_copy(update={"event_id": "case:c1:v2", "version": 2})
        assert await news_service.handle_case(conn, later_version) == "already_answered"
    (answer,) = await requests(pool)
    assert answer.kind is NotifyKind.ANSWER
    assert answer.event_id == f"answer:{question.case_id}:msg-1"
    assert answer.quote_message_id == "msg-1"
    assert answer.case_id == question.case_id and answer.reference == "LD-ABCDE"
    assert "7 ngày làm việc" in answer.text
    assert await pool.fetchval("SELECT count(*) FROM procedure_candidates") == 0


async def test_unsure_question_goes_to_officers_with_candidates(
    pool: asyncpg.Pool, news_service: NewsService, protector: IdentityProtector
):
    unsure = case(protector, "cho hỏi thủ tục ly hôn thuận tình làm ở đâu", version=3)
    async with pool.acquire() as conn:
        assert await news_service.handle_case(conn, unsure) == "handed_over"
    (reply,) = await requests(pool)
    assert "cán bộ" in reply.text
    row = await pool.fetchrow("SELECT * FROM procedure_candidates")
    assert str(row["case_id"]) == unsure.case_id and row["case_version"] == 3
    assert not row["answered"]
    candidates = json.loads(row["candidates"])
    assert 1 <= len(candidates) <= 3
    assert set(candidates[0]) == {"entry_id", "title", "score"}


async def test_not_every_case_is_a_question(
    pool: asyncpg.Pool, news_service: NewsService, protector: IdentityProtector
):
    tip = case(protector, "có trộm").model_copy(update={"category": Category.CRIME})
    menu = case(protector, "#cong_vu", version=4)
    async with pool.acquire() as conn:
        assert await news_service.handle_case(conn, tip) == "ignored"
        assert await news_service.handle_case(conn, menu) == "ignored"
    assert await requests(pool) == []


async def test_status_check_tells_the_coarse_state_only(
    pool: asyncpg.Pool,
    units: None,
    news_service: NewsService,
    events: EventFactory,
    protector: IdentityProtector,
):
    tip = case(protector, "có trộm xe").model_copy(
        update={"category": Category.CRIME, "question": None, "reply_to": None}
    )
    async with pool.acquire() as conn:
        await news_service.handle_case(conn, tip)
        verifying = tip.model_copy(
            update={"event_id": "case:c1:v5", "version": 5, "status": CaseStatus.VERIFYING}
        )
        await news_service.handle_case(conn, verifying)
        await news_service.handle_case(conn, tip)  # an older version arriving late: ignored
    asks = [
        events.make("user_send_text", at=later(i), text=text)
        for i, text in enumerate(("#tra_cuu LD-ABCDE", "tra cứu ld-zzzzz", "#tra_cuu"))
    ]
    for event in asks:
        assert await handle(pool, news_service, event) == "menu:tra_cuu"
    found, missing, usage = (r.text for r in await requests(pool))
    assert "LD-ABCDE đang được xác minh" in found
    for secret in ("trộm", "Xuân Hương", "tội phạm", "crime"):
        assert secret not in found
    assert "Không tìm thấy tin báo có mã LD-ZZZZZ" in missing
    assert "#tra_cuu LD-7K2Q9" in usage
    # Enough lookups to try codes one by one are refused.
    for i in range(10):
        await handle(
            pool,
            news_service,
            events.make("user_send_text", at=later(10 + i), text="#tra_cuu LD-ABCDE"),
        )
    assert "nhiều lần" in (await requests(pool))[-1].text
