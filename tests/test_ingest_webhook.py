"""POST /zalo/webhook against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import structlog
from aiokafka import AIOKafkaProducer

from ketnoi_ingest.app import Ingest, build_ingest, create_app
from ketnoi_ingest.settings import IngestSettings
from ketnoi_ingest.signature import compute_signature
from ketnoi_ingest.zalo_tools import send_webhook, sign_body
from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.db import claim
from ketnoi_shared.logging import configure_logging
from ketnoi_shared.messaging import CONSUMER_ACK_POLICY, make_broker
from ketnoi_shared.settings import CommonSettings

from .conftest import now_ms, read_topic

APP_ID = "1234567890123456789"
OA = "4123456789012345678"
OA_SECRET = "TESTOASECRETKEY00001"
APP_SECRET = "TESTAPPSECRETKEY0001"
CANARIES = ("8123456789012345678", "5123456789012345678", "84901234567", "Nguyễn Văn An")


def compact(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def fixture_body(fixtures_dir: Path, name: str) -> bytes:
    return compact(json.loads((fixtures_dir / "webhook" / f"{name}.json").read_text()))


def signed(raw: bytes, secret: str = OA_SECRET) -> dict[str, str]:
    return {"X-ZEvent-Signature": sign_body(raw, secret=secret), "Content-Type": "application/json"}


def ingest_settings(kafka: str, db: str | None, keys: dict[str, str], **kw) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap=kafka,
        database_url=db,
        zalo_oa_secrets={OA: OA_SECRET},
        pseudonym_key=keys["pseudonym_key"],
        seal_key=keys["seal_key"],
        **kw,
    )


@pytest.fixture
async def ingest(
    kafka_bootstrap: str, database_url: str, keys: dict[str, str]
) -> AsyncIterator[tuple[Ingest, httpx.AsyncClient]]:
    settings = ingest_settings(kafka_bootstrap, database_url, keys)
    svc = build_ingest(settings)
    app = create_app(settings, svc)
    await svc.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield svc, client
    await svc.stop()


async def side_effects(pool: asyncpg.Pool) -> tuple[int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM ingest_dedup"),
        await pool.fetchval("SELECT count(*) FROM outbox"),
    )


async def test_every_fixture_round_trips_into_the_contract(
    ingest, fixtures_dir: Path, kafka_bootstrap: str, pool: asyncpg.Pool
):
    _, client = ingest
    start = now_ms()
    names = sorted(p.stem for p in (fixtures_dir / "webhook").glob("*.json"))
    for name in names:
        raw = fixture_body(fixtures_dir, name)
        response = await client.post("/zalo/webhook", content=raw, headers=signed(raw))
        assert response.status_code == 200, (name, response.text)
        assert response.json()["status"] == "accepted", name
    records = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, until=len(names))
    events = [ZaloEvent.model_validate_json(r.value) for r in records]
    assert sorted(e.original_event_name or e.event_name for e in events) == names
    for record in records:
        for canary in CANARIES:
            assert canary.encode() not in record.value
            assert all(canary.encode() not in v for _, v in record.headers)
        assert canary.encode() not in (record.key or b"")
    by_name = {e.original_event_name or e.event_name: e for e in events}
    text = by_name["user_send_text"]
    assert [r.key for r in records if ZaloEvent.model_validate_json(r.value) == text] == [
        text.citizen.pseudonym.encode()
    ]
    assert await pool.fetchval("SELECT count(*) FROM ingest_dedup") == len(names)


BAD_BODIES = {
    "truncated_json": b'{"app_id":"1234567890123456789","event_name":"user_send_te',
    "invalid_utf8": b'{"app_id":"\xff\xfe","event_name":"x","timestamp":"1"}',
    "deep_nesting": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "not_an_object": b'["user_send_text"]',
    "huge_integer": b'{"app_id":' + b"9" * 5000 + b',"event_name":"follow","timestamp":"1"}',
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_malformed_bodies_get_4xx_and_no_side_effect(
    case: str, ingest, pool: asyncpg.Pool, kafka_bootstrap: str
):
    _, client = ingest
    raw = BAD_BODIES[case]
    response = await client.post(
        "/zalo/webhook", content=raw, headers={"X-ZEvent-Signature": "0" * 64}
    )
    assert 400 <= response.status_code < 500, response.text
    assert await side_effects(pool) == (0, 0)


async def test_signature_refusals_have_no_side_effect(
    ingest, fixtures_dir: Path, pool: asyncpg.Pool, kafka_bootstrap: str
):
    _, client = ingest
    start = now_ms()
    raw = fixture_body(fixtures_dir, "user_send_text")
    good = sign_body(raw, secret=OA_SECRET)
    cases = {
        "missing header": {},
        "bad signature": {"X-ZEvent-Signature": "0" * 64},
        "wrong secret (app secret)": signed(raw, APP_SECRET),
        "one hex digit off": {"X-ZEvent-Signature": good[:-1] + ("1" if good[-1] == "0" else "0")},
    }
    for label, headers in cases.items():
        response = await client.post("/zalo/webhook", content=raw, headers=headers)
        assert response.status_code == 401, label
    tampered = raw.replace(b"toi muon", b"TOI MUON") if b"toi muon" in raw else raw + b" "
    response = await client.post(
        "/zalo/webhook", content=tampered, headers={"X-ZEvent-Signature": good}
    )
    assert response.status_code == 401
    # The mac= form and upper-case hex are accepted.
    response = await client.post(
        "/zalo/webhook", content=raw, headers={"X-ZEvent-Signature": "mac=" + good.upper()}
    )
    assert response.status_code == 200
    # Only the accepted one left a trace: its claim and its journal row (already published).
    assert await side_effects(pool) == (1, 1)
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    records = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, timeout=3, idle=1)
    assert len(records) == 1


async def test_oversized_bodies_get_413_before_parsing(ingest, pool: asyncpg.Pool):
    _, client = ingest
    big = (
        b'{"app_id":"1","event_name":"user_send_text","message":{"text":"'
        + b"a" * (256 * 1024)
        + b'"},"timestamp":"1"}'
    )
    response = await client.post(
        "/zalo/webhook", content=big, headers={"X-ZEvent-Signature": "0" * 64}
    )
    assert response.status_code == 413

    async def chunks():  # no Content-Length: cut while streaming
        for _ in range(100):
            yield b"x" * 4096

    response = await client.post(
        "/zalo/webhook", content=chunks(), headers={"X-ZEvent-Signature": "0" * 64}
    )
    assert response.status_code == 413
    assert await side_effects(pool) == (0, 0)


async def test_nfd_text_and_strange_strings_are_accepted_and_normalised(
    ingest, fixtures_dir: Path, kafka_bootstrap: str
):
    _, client = ingest
    start = now_ms()
    base = json.loads((fixtures_dir / "webhook" / "user_send_text.json").read_text())
    texts = [
        unicodedata.normalize("NFD", "Tôi muốn tố giác đường dây đánh bạc ở Đà Lạt"),
        "<script>alert(1)</script>",
        "'; DROP TABLE cases; --",
        "\u202egnp.exe",
        "Ｔｈｅ ｑｕｉｃｋ",
        "\u200b\u200b\ufeff",
        "😭🙏🏻👮‍♀️",
        "null",
        "${jndi:ldap://x}",
        "\\u0000",
        "Ω≈ç√∫",
        "𝕿𝖍𝖊",
    ]
    for i, text in enumerate(texts):
        body = json.loads(json.dumps(base))
        body["message"]["text"] = text
        body["message"]["msg_id"] = f"blns{i:04d}"
        raw = compact(body)
        response = await client.post("/zalo/webhook", content=raw, headers=signed(raw))
        assert response.status_code == 200, (text, response.text)
    records = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, until=len(texts))
    got = {
        ZaloEvent.model_validate_json(r.value).message.msg_id: ZaloEvent.model_validate_json(
            r.value
        ).message.text
        for r in records
    }
    assert got["blns0000"] == "Tôi muốn tố giác đường dây đánh bạc ở Đà Lạt"
    assert got["blns0000"] == unicodedata.normalize("NFC", texts[0])
    assert got["blns0001"] == "<script>alert(1)</script>"


async def test_concurrent_duplicates_have_one_event_id_and_one_effect(
    ingest, fixtures_dir: Path, kafka_bootstrap: str, pool: asyncpg.Pool
):
    _, client = ingest
    start = now_ms()
    body = json.loads((fixtures_dir / "webhook" / "user_send_image.json").read_text())
    body["message"]["msg_id"] = "dup" + uuid.uuid4().hex[:16]  # unique to this test run
    raw = compact(body)
    headers = signed(raw)
    responses = await asyncio.gather(
        *(
            client.post(
                "/zalo/webhook", content=raw, headers=headers | ({"num_retry": str(i)} if i else {})
            )
            for i in range(5)
        )
    )
    assert [r.status_code for r in responses] == [200] * 5
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * 4
    assert len({r.json()["event_id"] for r in responses}) == 1
    records = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, timeout=3, idle=1)
    assert len(records) == 1
    # A consumer using the shared inbox processes it once, even when the broker redelivers it
    # (here: the same record produced a second time, as after a publish retry).
    event = ZaloEvent.model_validate_json(records[0].value)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    await producer.send_and_wait(
        ZALO_EVENTS.name, records[0].value, key=records[0].key, headers=list(records[0].headers)
    )
    await producer.stop()
    await pool.execute("CREATE TABLE stored (event_id text)")
    seen: list[str] = []
    consumer = make_broker(CommonSettings(kafka_bootstrap=kafka_bootstrap), service="dedup-test")

    @consumer.subscriber(
        ZALO_EVENTS.name,
        group_id="g-" + uuid.uuid4().hex[:8],
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
    )
    async def handle(msg: ZaloEvent) -> None:
        if msg.event_id != event.event_id:
            return
        seen.append(msg.event_id)
        async with pool.acquire() as conn, conn.transaction():
            if await claim(conn, consumer="test-consumer", event_id=msg.event_id):
                await conn.execute("INSERT INTO stored VALUES ($1)", msg.event_id)

    await consumer.start()
    try:
        for _ in range(300):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
    assert len(seen) == 2, "the consumer saw the event twice"
    assert await pool.fetchval("SELECT count(*) FROM stored") == 1, "and processed it once"


async def test_numeric_timestamp_is_hashed_as_written(ingest, fixtures_dir: Path):
    """A timestamp sent as a JSON number is accepted; the signature uses its literal text."""
    _, client = ingest
    raw = fixture_body(fixtures_dir, "user_send_text").replace(
        b'"timestamp":"1767225600123"', b'"timestamp":1767225600123'
    )
    assert b'"timestamp":1767225600123' in raw
    signature = compute_signature(
        app_id=APP_ID, raw_body=raw, timestamp="1767225600123", secret=OA_SECRET
    )
    response = await client.post(
        "/zalo/webhook", content=raw, headers={"X-ZEvent-Signature": signature}
    )
    assert response.status_code == 200, response.text


async def test_own_api_echo_is_dropped_but_admin_reply_kept(
    ingest, fixtures_dir: Path, kafka_bootstrap: str
):
    _, client = ingest
    start = now_ms()
    body = json.loads((fixtures_dir / "webhook" / "oa_send_text.json").read_text())
    api_echo = json.loads(json.dumps(body))
    del api_echo["sender"]["admin_id"]
    api_echo["message"]["msg_id"] = "apiecho0001"
    raw = compact(api_echo)
    response = await client.post("/zalo/webhook", content=raw, headers=signed(raw))
    assert response.json() == {"status": "ignored", "reason": "oa_echo"}
    raw = compact(body)
    assert (await client.post("/zalo/webhook", content=raw, headers=signed(raw))).json()[
        "status"
    ] == "accepted"
    records = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, timeout=3, idle=1)
    assert [ZaloEvent.model_validate_json(r.value).admin_id for r in records] == [
        "9123456789012345678"
    ]


async def test_canary_identity_never_in_logs(
    kafka_bootstrap: str,
    database_url: str,
    keys: dict[str, str],
    fixtures_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("ingest", level="DEBUG", fmt="json")
    try:
        settings = ingest_settings(kafka_bootstrap, database_url, keys)
        svc = build_ingest(settings)
        app = create_app(settings, svc)
        await svc.start()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://i"
        ) as client:
            for name in ("user_send_text", "user_submit_info", "follow", "user_click_chatnow"):
                raw = fixture_body(fixtures_dir, name)
                await client.post("/zalo/webhook", content=raw, headers=signed(raw))
                await client.post("/zalo/webhook", content=raw, headers={"X-ZEvent-Signature": "x"})
                await client.post("/zalo/webhook", content=raw[:-5], headers=signed(raw))
        await svc.stop()
    finally:
        logging.getLogger().handlers.clear()
        structlog.contextvars.clear_contextvars()
    out = stream.getvalue()
    assert "webhook refused" in out, "the test must see ingest's log lines"
    for canary in CANARIES:
        assert canary not in out


async def test_refuses_to_start_without_a_secret(keys: dict[str, str]):
    settings = IngestSettings(pseudonym_key=keys["pseudonym_key"], seal_key=keys["seal_key"])
    with pytest.raises(SystemExit, match="no Zalo OA secret"):
        build_ingest(settings)


async def test_app_wide_secret_is_the_fallback(
    kafka_bootstrap: str, database_url: str, keys: dict[str, str], fixtures_dir: Path
):
    settings = IngestSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        zalo_oa_secret=OA_SECRET,
        zalo_oa_secrets={"999": "other"},
        **keys,
    )
    svc = build_ingest(settings)
    await svc.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, svc)), base_url="http://i"
        ) as client:
            raw = fixture_body(fixtures_dir, "follow")
            assert (
                await client.post("/zalo/webhook", content=raw, headers=signed(raw))
            ).status_code == 200
    finally:
        await svc.stop()


async def test_send_webhook_follows_zalo_retries():
    calls: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.headers))
        return httpx.Response(200 if len(calls) == 3 else 503)

    raw = compact(
        {
            "app_id": APP_ID,
            "event_name": "follow",
            "timestamp": "1767226200123",
            "oa_id": OA,
            "follower": {"id": "1"},
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        t0 = time.monotonic()
        deliveries = await send_webhook(
            raw, url="http://x/zalo/webhook", secret=OA_SECRET, time_scale=0.0001, client=client
        )
        assert time.monotonic() - t0 < 5
    assert [d.status for d in deliveries] == [503, 503, 200]
    assert "num_retry" not in calls[0]
    assert [c.get("num_retry") for c in calls[1:]] == ["1", "2"]
    expected = compute_signature(
        app_id=APP_ID, raw_body=raw, timestamp="1767226200123", secret=OA_SECRET
    )
    assert {c["x-zevent-signature"] for c in calls} == {expected}


async def test_a_batch_commits_asynchronously_only_inside_its_own_transaction(
    ingest, fixtures_dir: Path
):
    """Dedup claims commit with synchronous_commit off for their own transaction only:
    ingest's pooled connections (which are not reset on release) keep the server's setting,
    so a spooled event is still flushed before its 200."""
    svc, client = ingest
    raw = fixture_body(fixtures_dir, "user_send_text")
    assert (await client.post("/zalo/webhook", content=raw, headers=signed(raw))).status_code == 200
    assert svc.pool is not None
    for _ in range(svc.pool.get_size()):
        async with svc.pool.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"


async def test_an_event_the_broker_loses_is_published_again_from_the_journal(
    ingest, fixtures_dir: Path, kafka_bootstrap: str, pool: asyncpg.Pool
):
    """Every accepted event is journalled with the bytes that were published; if triage never
    claims it (a broker restarted empty lost it), the reconciler marks it pending again and
    the relay publishes the same record again."""
    from ketnoi_shared.reconcile import reconcile_once  # noqa: PLC0415

    _, client = ingest
    raw = fixture_body(fixtures_dir, "user_send_text")
    start = now_ms()
    assert (await client.post("/zalo/webhook", content=raw, headers=signed(raw))).status_code == 200
    (published,) = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, until=1)
    row = await pool.fetchrow("SELECT * FROM outbox WHERE topic = $1", ZALO_EVENTS.name)
    assert row["published_at"] is not None  # journalled, not spooled
    assert (row["key"], row["value"]) == (published.key, published.value)
    event_id = ZaloEvent.model_validate_json(row["value"]).event_id
    assert event_id == row["event_id"]

    async with pool.acquire() as conn, conn.transaction():
        assert (await reconcile_once(conn, after_s=0))[ZALO_EVENTS.name] == 1
    for _ in range(100):  # ingest's own relay publishes it again
        if await pool.fetchval(
            "SELECT published_at IS NOT NULL FROM outbox WHERE id = $1", row["id"]
        ):
            break
        await asyncio.sleep(0.05)
    again = await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=start, until=2)
    assert [(r.key, r.value) for r in again] == [(published.key, published.value)] * 2

    # Once triage has it (its inbox claim), the reconciler leaves it alone.
    async with pool.acquire() as conn, conn.transaction():
        await claim(conn, consumer="triage", event_id=event_id)
        await conn.execute("UPDATE outbox SET published_at = now() - interval '1 hour'")
        assert (await reconcile_once(conn, after_s=0))[ZALO_EVENTS.name] == 0
