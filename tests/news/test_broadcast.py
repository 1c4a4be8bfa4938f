"""Alerts to followers against the Zalo sandbox (strict like Zalo) on a real PostgreSQL:
article create → verify (-214 while processing) → broadcast; no broadcast at night (queued
until 06:00); one a day and a monthly cap per follower; unverified OAs refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from ketnoi_news.broadcast import Broadcaster, is_night, next_morning
from ketnoi_news.zalo_articles import ArticleClient, ZaloArticleApi
from ketnoi_notifier.tokens import TokenStore
from ketnoi_notifier.zalo import TokenPair
from ketnoi_sandbox import ManualClock, SandboxSettings, create_sandbox_app
from ketnoi_shared.identity import IdentityProtector

APP_ID = "1234567890123456789"
SECRET = "TESTAPPSECRETKEY0001"
OA = "4123456789012345678"
OTHER_OA = "4999999999999999999"
#: 2026-03-02 23:30 in Vietnam.
LATE_EVENING = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)


@dataclass
class Zalo:
    http: httpx.AsyncClient
    clock: ManualClock
    api: ZaloArticleApi

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def broadcasts(self) -> list[dict]:
        sent = (await self.http.get("http://sb/sandbox/messages", params={"oa": OA})).json()
        return [m for m in sent if m.get("kind") == "broadcast" or m.get("type") == "broadcast"]


@pytest.fixture
async def zalo(pool: asyncpg.Pool, protector: IdentityProtector) -> AsyncIterator[Zalo]:
    clock = ManualClock(LATE_EVENING.timestamp())
    app = create_sandbox_app(
        SandboxSettings(app_id=APP_ID, app_secret=SECRET, clock=clock, article_processing_s=10)
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = ArticleClient(openapi_url="http://sb", oauth_url="http://sb", http=http)
    pair = (await http.post("http://sb/sandbox/tokens", json={"oa_id": OA})).json()
    tokens = TokenStore(
        pool=pool, client=client, protector=protector, app_id=APP_ID, app_secret=SECRET
    )
    await tokens.save(
        OA, TokenPair(pair["access_token"], pair["refresh_token"], int(pair["expires_in"]))
    )
    yield Zalo(http, clock, ZaloArticleApi(client, tokens))
    await http.aclose()


def test_night_window():
    assert is_night(LATE_EVENING)
    assert not is_night(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # 09:00 in Vietnam
    assert next_morning(LATE_EVENING) == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # 06:00 +07
    early = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 04:00 on the 3rd in Vietnam
    assert next_morning(early) == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)


async def test_night_queue_verify_caps(pool: asyncpg.Pool, zalo: Zalo):
    await pool.executemany(
        "INSERT INTO followers (oa_id, citizen_pseudonym, following, changed_at) "
        "VALUES ($1, $2, $3, now())",
        [
            (OA, "psn_" + "a" * 32, True),
            (OA, "psn_" + "b" * 32, True),
            (OA, "psn_" + "c" * 32, False),
        ],
    )
    broadcaster = Broadcaster(pool, zalo.api, verified_oas={OA}, monthly_cap=2, clock=zalo.now)
    bid = await broadcaster.create(
        title="Cảnh báo thủ đoạn lừa đảo mới: giả danh công an yêu cầu cài ứng dụng",
        body="Công an không bao giờ yêu cầu cài ứng dụng qua điện thoại.\n\nHãy báo ngay 113.",
        oa_ids=[OA],
        requested_by="officer:42",
        cover_url="https://congan.example.gov.vn/static/canh-bao.jpg",
    )
    # 23:30: nothing is sent, the broadcast waits for 06:00.
    (outcome,) = await broadcaster.run_due()
    assert (outcome.status, outcome.reason) == ("pending", "night")
    assert outcome.not_before == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    assert await broadcaster.run_due() == []  # not due yet
    assert await zalo.broadcasts() == []

    # 06:05: the article is created, Zalo is still processing it (-214): verified later.
    zalo.clock.set(datetime(2026, 3, 2, 23, 5, tzinfo=UTC).timestamp())
    (outcome,) = await broadcaster.run_due()
    assert (outcome.status, outcome.reason) == ("pending", "verify")
    zalo.clock.advance(30)
    (outcome,) = await broadcaster.run_due()
    assert outcome.status == "sent"
    row = await pool.fetchrow("SELECT * FROM broadcast_targets WHERE broadcast_id = $1", bid)
    assert row["article_id"] and row["zalo_message_id"] and row["recipients"] == 2
    assert len(await zalo.broadcasts()) == 1
    counts = await pool.fetch("SELECT * FROM broadcast_counts ORDER BY citizen_pseudonym")
    assert [c["count"] for c in counts] == [1, 1]  # the unfollowed citizen is not counted

    # A second alert the same day: one broadcast a day per follower, so tomorrow morning.
    await broadcaster.create(
        title="Tin thứ hai", body="Nội dung.", oa_ids=[OA], requested_by="officer:42"
    )
    (outcome,) = await broadcaster.run_due()
    assert (outcome.status, outcome.reason) == ("pending", "daily_cap")
    zalo.clock.set(datetime(2026, 3, 3, 23, 30, tzinfo=UTC).timestamp())  # 06:30 on the 4th
    (outcome,) = await broadcaster.run_due()
    assert (outcome.status, outcome.reason) == ("pending", "verify")
    zalo.clock.advance(30)
    assert [o.status for o in await broadcaster.run_due()] == ["sent"]

    # Every follower has had this month's two: a third is refused, nothing sent.
    zalo.clock.set(datetime(2026, 3, 5, 2, 0, tzinfo=UTC).timestamp())
    await broadcaster.create(
        title="Tin thứ ba", body="Nội dung.", oa_ids=[OA], requested_by="officer:42"
    )
    (outcome,) = await broadcaster.run_due()
    assert (outcome.status, outcome.reason) == ("refused", "monthly_cap")
    assert len(await zalo.broadcasts()) == 2


async def test_unverified_oa_is_refused_without_calling_zalo(pool: asyncpg.Pool, zalo: Zalo):
    zalo.clock.set(datetime(2026, 3, 2, 2, 0, tzinfo=UTC).timestamp())  # 09:00
    broadcaster = Broadcaster(pool, zalo.api, verified_oas={OA}, clock=zalo.now)
    await pool.execute(
        """INSERT INTO news_items (item_id, source_id, url, url_key, title, title_key, summary)
           VALUES ('n1', 'bca', 'https://bca.vn/a', 'bca.vn/a', 'Cảnh báo lừa đảo', 'k',
                   'Không chuyển tiền cho người lạ.')"""
    )
    await broadcaster.create_from_item(
        item_id="n1", oa_ids=[OTHER_OA, OA], requested_by="officer:7"
    )
    outcomes = {o.oa_id: o for o in await broadcaster.run_due()}
    assert (outcomes[OTHER_OA].status, outcomes[OTHER_OA].reason) == (
        "refused",
        "oa_not_verified",
    )
    assert outcomes[OA].status == "pending"  # verification of the article under way
    zalo.clock.advance(30)
    assert [o.status for o in await broadcaster.run_due()] == ["sent"]
    sent = await zalo.broadcasts()
    assert len(sent) == 1
