"""Ingest → Kafka → triage → outbox → Kafka, on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from ketnoi_ingest.app import build_ingest
from ketnoi_ingest.app import create_app as create_ingest
from ketnoi_ingest.settings import IngestSettings
from ketnoi_ingest.zalo_tools import sign_body
from ketnoi_shared.contracts import NotifyRequest, TriagedCase
from ketnoi_triage.app import create_app as create_triage
from ketnoi_triage.directory import upsert_units
from ketnoi_triage.engine import Triage
from ketnoi_triage.settings import TriageSettings

from ..conftest import now_ms, read_topic
from .conftest import OA, TEST_UNITS

SECRET = "TESTOASECRETKEY00001"


def webhook(fixtures_dir: Path, name: str, *, user: str, msg_id: str, **message) -> bytes:
    body = json.loads((fixtures_dir / "webhook" / f"{name}.json").read_text())
    body["sender"]["id"] = user
    body["message"]["msg_id"] = msg_id
    body["message"].update(message)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def test_tip_through_ingest_and_triage_gets_one_acknowledgement(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    fixtures_dir: Path,
    engine: Triage,
):
    async with pool.acquire() as conn:
        await upsert_units(conn, TEST_UNITS)
    since = now_ms()
    user = "81" + uuid.uuid4().int.__str__()[:17]
    tag = uuid.uuid4().hex[:8]
    ingest_settings = IngestSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        zalo_oa_secrets={OA: SECRET},
        **keys,
    )
    ingest = build_ingest(ingest_settings)
    ingest_app = create_ingest(ingest_settings, ingest)
    triage_settings = TriageSettings(
        kafka_bootstrap=kafka_bootstrap, database_url=database_url, retry_backoff_s=0.01, **keys
    )
    triage_app = create_triage(triage_settings, engine=engine)
    await ingest.start()
    try:
        async with (
            triage_app.router.lifespan_context(triage_app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=ingest_app), base_url="http://ingest"
            ) as client,
        ):
            # A poison message on the topic must not stop triage.
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            await producer.send_and_wait("zalo.events.v1", b"\x00 not an event", key=b"x")
            await producer.stop()
            bodies = [
                webhook(
                    fixtures_dir,
                    "user_send_text",
                    user=user,
                    msg_id=f"{tag}1",
                    text="có đám thanh niên đang đua xe bốc đầu ngoài đường 3/2, nguy hiểm",
                ),
                webhook(fixtures_dir, "user_send_image", user=user, msg_id=f"{tag}2"),
                webhook(fixtures_dir, "user_send_location", user=user, msg_id=f"{tag}3"),
            ]
            for raw in bodies:
                response = await client.post(
                    "/zalo/webhook",
                    content=raw,
                    headers={"X-ZEvent-Signature": sign_body(raw, secret=SECRET)},
                )
                assert response.status_code == 200
            # Zalo retries one of them: still one effect.
            response = await client.post(
                "/zalo/webhook",
                content=bodies[0],
                headers={
                    "X-ZEvent-Signature": sign_body(bodies[0], secret=SECRET),
                    "num_retry": "1",
                },
            )
            assert response.json()["status"] == "duplicate"

            for _ in range(300):
                n = await pool.fetchval(
                    "SELECT count(*) FROM case_messages m JOIN cases c ON c.id = m.case_id "
                    "WHERE m.msg_id LIKE $1",
                    f"{tag}%",
                )
                if n == 3:
                    break
                await asyncio.sleep(0.1)
            assert n == 3
            ready = await httpx.AsyncClient(
                transport=httpx.ASGITransport(app=triage_app), base_url="http://t"
            ).get("/readyz")
            assert ready.status_code == 200
            case = await pool.fetchrow(
                "SELECT c.* FROM cases c JOIN case_messages m ON m.case_id = c.id "
                "WHERE m.msg_id = $1",
                f"{tag}1",
            )
            for _ in range(100):
                if not await pool.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                ):
                    break
                await asyncio.sleep(0.1)
    finally:
        await ingest.stop()
    assert case["category"] == "traffic"
    assert case["message_count"] == 3
    acks = [
        NotifyRequest.model_validate_json(r.value)
        for r in await read_topic(
            kafka_bootstrap, "notify.requests.v1", since_ms=since, timeout=5, idle=1
        )
    ]
    mine = [a for a in acks if a.case_id == str(case["id"])]
    assert len(mine) == 1, "exactly one acknowledgement for the case"
    assert case["reference"] in mine[0].text
    versions = [
        TriagedCase.model_validate_json(r.value)
        for r in await read_topic(
            kafka_bootstrap, "reports.triaged.v1", since_ms=since, timeout=5, idle=1
        )
    ]
    mine_versions = sorted(
        (v for v in versions if v.case_id == str(case["id"])), key=lambda v: v.version
    )
    # One version per re-triage: per batch of events that touched the case.
    assert [v.version for v in mine_versions] == list(range(1, len(mine_versions) + 1))
    assert mine_versions[-1].message_count == 3
    # The citizen's Zalo id is a canary: nowhere in clear, in any table or topic.
    tables = [
        r["tablename"]
        for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    assert {"cases", "case_messages", "citizen_contacts", "outbox"} <= set(tables)
    for table in tables:
        hits = await pool.fetchval(
            f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'",
            user,
        )
        assert hits == 0, f"the citizen id appears in clear in {table}"
    for topic in ("zalo.events.v1", "reports.triaged.v1", "notify.requests.v1"):
        for record in await read_topic(kafka_bootstrap, topic, since_ms=since, timeout=3, idle=1):
            assert user.encode() not in record.value
            assert user.encode() not in (record.key or b"")
            assert all(user.encode() not in v for _, v in record.headers)
    dead = await read_topic(
        kafka_bootstrap, "zalo.events.v1.dlq", since_ms=since, timeout=5, idle=1
    )
    assert any(r.value == b"\x00 not an event" for r in dead)
    reasons = {dict(r.headers).get("x-dlq-reason") for r in dead}
    assert b"undecodable" in reasons
