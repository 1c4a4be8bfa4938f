"""A citizen asks "lam cccd mat bao lau": ingest → zalo.events.v1 → triage (admin question) →
reports.triaged.v1 → news → notify.requests.v1 → the notifier's delivery → the Zalo sandbox's
record of what the citizen's phone received. Real broker and PostgreSQL; Zalo is the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from ketnoi_ingest.app import build_ingest
from ketnoi_ingest.app import create_app as create_ingest
from ketnoi_ingest.settings import IngestSettings
from ketnoi_ingest.zalo_tools import sign_body
from ketnoi_news.app import create_app as create_news
from ketnoi_news.settings import NewsSettings
from ketnoi_notifier.delivery import Delivery
from ketnoi_notifier.tokens import TokenStore
from ketnoi_notifier.zalo import TokenPair, ZaloClient
from ketnoi_sandbox import SandboxSettings, create_sandbox_app
from ketnoi_shared.contracts import DeliveryStatus, NotifyKind, NotifyRequest
from ketnoi_shared.identity import IdentityProtector
from ketnoi_triage.app import create_app as create_triage
from ketnoi_triage.directory import upsert_units
from ketnoi_triage.engine import Triage
from ketnoi_triage.settings import TriageSettings

from ..conftest import now_ms, read_topic
from .conftest import OA, UNITS

SECRET = "TESTOASECRETKEY00001"
APP_ID = "1234567890123456789"
APP_SECRET = "TESTAPPSECRETKEY0001"


@contextlib.asynccontextmanager
async def pipeline(
    kafka_bootstrap: str, database_url: str, keys: dict[str, str], engine: Triage
) -> AsyncIterator[Callable[[bytes], Awaitable[None]]]:
    """Ingest, triage and news running on the real broker and database; yields a function that
    posts a webhook body to ingest, signed as Zalo signs it."""
    ingest_settings = IngestSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        zalo_oa_secrets={OA: SECRET},
        **keys,
    )
    ingest = build_ingest(ingest_settings)
    triage_app = create_triage(
        TriageSettings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, **keys),
        engine=engine,
    )
    news_app = create_news(
        NewsSettings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, **keys),
        poll_every_s=3600,
    )
    await ingest.start()
    try:
        async with (
            triage_app.router.lifespan_context(triage_app),
            news_app.router.lifespan_context(news_app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_ingest(ingest_settings, ingest)),
                base_url="http://ingest",
            ) as client,
        ):

            async def send(raw: bytes) -> None:
                response = await client.post(
                    "/zalo/webhook",
                    content=raw,
                    headers={"X-ZEvent-Signature": sign_body(raw, secret=SECRET)},
                )
                assert response.status_code == 200

            yield send
    finally:
        await ingest.stop()


async def test_citizen_asks_and_receives_the_answer(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    protector: IdentityProtector,
    fixtures_dir: Path,
    engine: Triage,
):
    async with pool.acquire() as conn:
        await upsert_units(conn, UNITS)
    since = now_ms()
    user = "82" + str(uuid.uuid4().int)[:17]
    msg_id = "q" + uuid.uuid4().hex[:12]
    body = json.loads((fixtures_dir / "webhook" / "user_send_text.json").read_text())
    body["sender"]["id"] = user
    body["message"].update(msg_id=msg_id, text="lam cccd mat bao lau")
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    async with pipeline(kafka_bootstrap, database_url, keys, engine) as send:
        await send(raw)
        answer = None
        for _ in range(200):
            row = await pool.fetchrow(
                "SELECT value FROM outbox WHERE topic = 'notify.requests.v1' "
                "AND event_id LIKE 'answer:%' AND published_at IS NOT NULL"
            )
            if row is not None:
                answer = NotifyRequest.model_validate_json(bytes(row["value"]))
                break
            await asyncio.sleep(0.1)
    assert answer is not None, "no answer published"
    published = [
        NotifyRequest.model_validate_json(r.value)
        for r in await read_topic(
            kafka_bootstrap, "notify.requests.v1", since_ms=since, timeout=5, idle=1
        )
    ]
    mine = [r for r in published if r.recipient.pseudonym == protector.pseudonym(user)]
    assert [r.kind for r in mine] == [NotifyKind.ANSWER], "one reply: the answer, no ack"
    assert mine[0].quote_message_id == msg_id
    assert "7 ngày làm việc" in mine[0].text

    # The notifier delivers it to Zalo (the sandbox); the citizen's phone has it.
    sandbox = create_sandbox_app(SandboxSettings(app_id=APP_ID, app_secret=APP_SECRET))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as http:
        zalo = ZaloClient(openapi_url="http://sb", oauth_url="http://sb", http=http)
        await http.post(
            "http://sb/sandbox/interactions", json={"oa_id": OA, "user_id": user, "kind": "message"}
        )
        pair = (await http.post("http://sb/sandbox/tokens", json={"oa_id": OA})).json()
        tokens = TokenStore(
            pool=pool, client=zalo, protector=protector, app_id=APP_ID, app_secret=APP_SECRET
        )
        await tokens.save(
            OA, TokenPair(pair["access_token"], pair["refresh_token"], int(pair["expires_in"]))
        )
        delivery = Delivery(pool=pool, client=zalo, tokens=tokens, protector=protector)
        assert await delivery.deliver(mine[0]) is DeliveryStatus.SENT
        received = (
            await http.get("http://sb/sandbox/messages", params={"user": user, "oa": OA})
        ).json()
    texts = "\n".join(m.get("text") or "" for m in received)
    assert "CẤP THẺ CĂN CƯỚC" in texts and "7 ngày làm việc" in texts


async def test_status_check_by_reference_after_a_tip(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    protector: IdentityProtector,
    fixtures_dir: Path,
    engine: Triage,
):
    """A tip, then "#tra_cuu <its reference>": the news service answers from its own
    projection of reports.triaged.v1 (every case version, not only questions)."""
    async with pool.acquire() as conn:
        await upsert_units(conn, UNITS)
    user = "83" + str(uuid.uuid4().int)[:17]
    template = json.loads((fixtures_dir / "webhook" / "user_send_text.json").read_text())

    def webhook(text: str, at_ms: int) -> bytes:
        body = json.loads(json.dumps(template))
        body["sender"]["id"] = user
        body["timestamp"] = str(at_ms)
        body["message"].update(msg_id="s" + uuid.uuid4().hex[:12], text=text)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    now = now_ms()
    async with pipeline(kafka_bootstrap, database_url, keys, engine) as send:
        await send(webhook("Có trộm đột nhập nhà hàng xóm tối qua ở hẻm 3", now))
        reference = None
        for _ in range(300):
            reference = await pool.fetchval("SELECT reference FROM case_status LIMIT 1")
            if reference:
                break
            await asyncio.sleep(0.1)
        assert reference, "the news service projected the tip's status"
        await send(webhook(f"#tra_cuu {reference}", now + 1000))
        answer = None
        for _ in range(300):
            row = await pool.fetchrow(
                "SELECT value FROM outbox WHERE topic = 'notify.requests.v1' "
                "AND event_id LIKE 'menu:%'"
            )
            if row is not None:
                answer = NotifyRequest.model_validate_json(bytes(row["value"]))
                break
            await asyncio.sleep(0.1)
    assert answer is not None
    assert f"Tin báo mã {reference} đã được tiếp nhận" in answer.text
    assert "trộm" not in answer.text
    # Triage opened no case for the status query.
    assert await pool.fetchval("SELECT count(*) FROM cases") == 1
