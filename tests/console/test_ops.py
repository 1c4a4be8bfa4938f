"""The operators' dashboards on the real broker and PostgreSQL: log-end offsets and lag as a
real consumer group has them, the dead-letter browser keeping identities sealed, a replay
re-processed exactly once by a real consumer (triage), admin-only access, service health and
OA token status."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI

from ketnoi_console import ops
from ketnoi_console.settings import ConsoleSettings
from ketnoi_shared.contracts import ZALO_EVENTS, TopicSpec, ZaloEvent
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import dead_letter, ensure_topics, kafka_headers, make_broker
from ketnoi_shared.metrics import REGISTRY
from ketnoi_shared.service import ReadinessChecks, add_probes
from ketnoi_stack.embedded import free_port
from ketnoi_triage.app import create_app as create_triage
from ketnoi_triage.engine import Triage
from ketnoi_triage.settings import TriageSettings

from ..conftest import now_ms, read_topic
from ..triage.conftest import EventFactory
from .conftest import OA

ROOT = Path(__file__).resolve().parents[2]
#: A Zalo user id and phone numbers that must never appear in clear on an operator's page.
CANARY_ID = "8123456789012345677"
CANARY_PHONE = "0912345678"
ZALO_DLQ = ZALO_EVENTS.dlq


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def fake_service() -> AsyncIterator[str]:
    """A service answering /readyz and /metrics exactly as every Ketnoi service does."""
    app = FastAPI()

    async def ok() -> bool:
        return True

    add_probes(app, ReadinessChecks(probes={"broker": ok, "database": ok}), service="fake")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
def console_settings(console_settings: ConsoleSettings, fake_service: str) -> ConsoleSettings:
    """The console of these tests watches one healthy service and one that is not there."""
    return console_settings.model_copy(
        update={
            "console_service_urls": {
                "fake": fake_service,
                "gone": f"http://127.0.0.1:{free_port()}",
            }
        }
    )


@pytest.fixture
async def inspector(kafka_bootstrap: str) -> AsyncIterator[ops.BrokerInspector]:
    inspector = ops.BrokerInspector(kafka_bootstrap)
    yield inspector
    await inspector.close()


@pytest.fixture
async def dlq_broker(console_settings: ConsoleSettings) -> AsyncIterator[Any]:
    """The FastStream broker the services dead-letter with."""
    broker = make_broker(console_settings, service="test-dlq")
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture(scope="module")
def engine() -> Triage:
    return Triage.load()


async def _dead_letter(
    broker: Any,
    inspector: ops.BrokerInspector,
    value: bytes,
    *,
    key: bytes = b"k",
    headers: list[tuple[str, bytes]] | None = None,
    reason: str = "handler_error",
    consumer: str = "triage",
) -> int:
    """Dead-letter ``value`` as a consumer of zalo.events.v1 does; returns its DLQ offset."""
    record = SimpleNamespace(
        topic=ZALO_EVENTS.name, partition=3, offset=4242, key=key, value=value, headers=headers
    )
    tp = TopicPartition(ZALO_DLQ, 0)
    before = (await inspector.offsets([tp]))[tp].end
    exc = (
        ValueError("boom")
        if reason == "handler_error"
        else UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    )
    await dead_letter(broker, record, exc, consumer=consumer, attempts=4, reason=reason)
    assert (await inspector.offsets([tp]))[tp].end == before + 1
    return before


# -- offsets and lag -----------------------------------------------------------------------------


async def test_concurrent_first_requests_start_one_consumer_each_and_close_them_all(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reliability finding 9: four operators' pages at once on a fresh inspector started a
    reader (and a group consumer) each, kept one, and left the others running after close()."""
    started: list[AIOKafkaConsumer] = []

    class Tracked(AIOKafkaConsumer):
        async def start(self) -> None:
            started.append(self)
            await super().start()

    monkeypatch.setattr(ops, "AIOKafkaConsumer", Tracked)
    inspector = ops.BrokerInspector(kafka_bootstrap)
    tps = [TopicPartition(ZALO_EVENTS.name, 0), TopicPartition(ZALO_EVENTS.name, 1)]
    await asyncio.gather(
        *(inspector.partitions([ZALO_EVENTS.name]) for _ in range(4)),
        *(inspector.committed("triage", tps) for _ in range(4)),
    )
    assert len(started) == 2  # one reader, one consumer for the group
    await inspector.close()
    assert all(c._closed for c in started)


async def test_log_end_and_lag_match_a_real_consumer_group(
    kafka_bootstrap: str, inspector: ops.BrokerInspector
) -> None:
    topic = "test.ops." + uuid.uuid4().hex[:8]
    await ensure_topics(
        kafka_bootstrap,
        [TopicSpec(topic, 3, "k", None, 3_600_000, "lag test")],
    )
    # Batched sends (linger): several records per batch, which Tansu's ListOffsets miscounts.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, b"v%d" % i, key=uuid.uuid4().bytes) for i in range(90)
        ]
        produced = Counter(m.partition for m in await asyncio.gather(*futures))
    finally:
        await producer.stop()
    assert sum(produced.values()) == 90

    group = "test-ops-" + uuid.uuid4().hex[:6]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    consumed: Counter[int] = Counter()
    try:
        positions: dict[TopicPartition, int] = {}
        while sum(consumed.values()) < 35:
            batch = await consumer.getmany(timeout_ms=1000, max_records=35 - sum(consumed.values()))
            for tp, records in batch.items():
                consumed[tp.partition] += len(records)
                positions[tp] = records[-1].offset + 1
        await consumer.commit(positions)
    finally:
        await consumer.stop()

    tps = [TopicPartition(topic, p) for p in range(3)]
    offsets = await inspector.offsets(tps)
    assert {tp.partition: o.end for tp, o in offsets.items()} == {p: produced[p] for p in range(3)}
    lag = await ops.group_lag(inspector, ops.GroupSpec(group, topic, "test"))
    assert {p.partition: p.lag for p in lag.partitions} == {
        p: produced[p] - consumed[p] for p in range(3)
    }
    assert lag.total == 90 - 35
    assert {p.partition: p.committed for p in lag.partitions if p.committed is not None} == {
        tp.partition: o for tp, o in positions.items()
    }

    # The produce rate: the change of the summed log ends between two samples.
    now = [100.0]
    rates = ops.RateTracker(clock=lambda: now[0])
    spec = TopicSpec(topic, 3, "k", None, 3_600_000, "lag test")
    first = await ops.topic_stats(inspector, [spec], rates)
    assert first[0].rate is None and first[0].end == 90
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, b"more") for _ in range(20)])
    finally:
        await producer.stop()
    now[0] += 4.0
    second = await ops.topic_stats(inspector, [spec], rates)
    assert second[0].end == 110
    assert second[0].rate == pytest.approx(5.0)


def test_consumer_groups_match_the_services() -> None:
    """CONSUMER_GROUPS lists every ``group_id=`` of services/*/src."""
    found: set[str] = set()
    for service in (ROOT / "services").iterdir():
        # (ops.py itself reads the groups' commits: it uses their ids, it is not a member)
        sources = [p.read_text() for p in service.glob("src/**/*.py") if p.name != "ops.py"]
        constants = dict(
            m for text in sources for m in re.findall(r'^(\w+): Final = "([\w-]+)"', text, re.M)
        )
        for text in sources:
            # A parameter's default (the media app takes its group as an argument).
            constants.update(re.findall(r"(\w+): str = (\w+),", text))
            for ref in re.findall(r"group_id=([\w\"-]+)", text):
                name = ref
                for _ in range(3):
                    name = constants.get(name, name)
                name = name.strip('"')
                assert name and not name.isupper() and name != "group_id", ref
                found.add(name)
    assert found == {g.group for g in ops.CONSUMER_GROUPS}


# -- dead letters --------------------------------------------------------------------------------


async def test_dlq_browser_shows_headers_and_keeps_identities_sealed(
    browser: Any,
    dlq_broker: Any,
    inspector: ops.BrokerInspector,
    fixtures_dir: Path,
    protector: IdentityProtector,
) -> None:
    event = EventFactory(fixtures_dir, protector).make(
        "user_send_text",
        user=CANARY_ID,
        text=f"Gọi tôi số {CANARY_PHONE} hoặc 0987 654 321, Zalo {CANARY_ID}",
    )
    valid = await _dead_letter(
        dlq_broker,
        inspector,
        event.model_dump_json().encode(),
        key=event.partition_key().encode(),
        headers=kafka_headers(event),
    )
    poison_json = json.dumps(
        {
            "event_id": "poison-1",
            "sender": {"id": CANARY_ID},
            "note": f"số {CANARY_PHONE}",
            "ref": CANARY_ID,
            "amount": int(CANARY_ID),
        }
    ).encode()
    poison = await _dead_letter(dlq_broker, inspector, poison_json, key=CANARY_ID.encode())
    binary = b"\xff\xfe\x00" + CANARY_ID.encode() * 8
    raw = await _dead_letter(dlq_broker, inspector, binary, reason="undecodable", consumer="news")

    admin = await browser("admin")
    page = await admin.client.get("/ops/dlq", params={"topic": ZALO_DLQ})
    assert page.status_code == 200
    html = page.text
    for secret in (CANARY_ID, CANARY_PHONE, "0987 654 321", "Gọi tôi"):
        assert secret not in html
    for offset in (valid, poison, raw):
        assert f'id="dlq-0-{offset}"' in html
    block = html.split(f'id="dlq-0-{valid}"')[1].split("</li>")[0]
    assert "Lỗi khi xử lý (đã thử hết số lần)" in block
    assert "ValueError" in block and "zalo.events.v1" in block and "4242" in block
    assert "sealed:v1:" in block  # the sealed Zalo id, still sealed
    assert "[ẩn" in block  # the tip's text is not shown
    assert ops.redact(event.event_id) in block  # (its msg id has a long digit run)
    block = html.split(f'id="dlq-0-{raw}"')[1].split("</li>")[0]
    assert "Không giải mã được" in block and "ff fe 00" in block
    assert binary[:64].hex(" ") in block and binary[:65].hex(" ") not in block
    # The overview counts the dead letters.
    overview = await admin.client.get("/ops/live")
    assert overview.status_code == 200
    found = re.search(rf'data-dlq="{re.escape(ZALO_DLQ)}" data-count="(\d+)"', overview.text)
    assert found and int(found.group(1)) >= 3


async def test_replay_twice_is_processed_once(
    browser: Any,
    seeded: Any,
    console_settings: ConsoleSettings,
    keys: dict[str, str],
    kafka_bootstrap: str,
    dlq_broker: Any,
    inspector: ops.BrokerInspector,
    fixtures_dir: Path,
    protector: IdentityProtector,
    engine: Triage,
) -> None:
    pool: asyncpg.Pool = seeded.pool
    event: ZaloEvent = EventFactory(fixtures_dir, protector).make(
        "user_send_text", user=CANARY_ID, text="Có nhóm thanh niên đua xe trên đường 3/2 lúc 23h"
    )
    dlq_offset = await _dead_letter(
        dlq_broker,
        inspector,
        event.model_dump_json().encode(),
        key=event.partition_key().encode(),
        headers=kafka_headers(event),
    )
    # Triage starts where its group would be now: after every record already on the topic.
    parts = (await inspector.partitions([ZALO_EVENTS.name]))[ZALO_EVENTS.name]
    ends = await inspector.offsets(parts)
    mover = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id="triage", enable_auto_commit=False
    )
    await mover.start()
    try:
        mover.assign(parts)
        if moved := {tp: o.end for tp, o in ends.items() if o.end}:
            await mover.commit(moved)
    finally:
        await mover.stop()

    duplicates = (
        REGISTRY.get_sample_value("ketnoi_inbox_duplicates_total", {"consumer": "triage"}) or 0.0
    )
    triage = create_triage(
        TriageSettings(
            kafka_bootstrap=kafka_bootstrap,
            database_url=console_settings.database_url,
            retry_backoff_s=0.01,
            **keys,
        ),
        engine=engine,
    )
    since = now_ms()
    admin = await browser("admin")
    reason = "Triage đã sửa lỗi, xử lý lại tin này"
    async with triage.router.lifespan_context(triage):
        first = await admin.post(
            "/ops/dlq/replay", topic=ZALO_DLQ, partition="0", offset=str(dlq_offset), reason=reason
        )
        assert first.status_code == 303, first.text
        await _until(pool, "SELECT count(*) FROM case_messages WHERE event_id = $1", event.event_id)

        again = await admin.post(
            "/ops/dlq/replay", topic=ZALO_DLQ, partition="0", offset=str(dlq_offset), reason=reason
        )
        assert again.status_code == 409
        assert "đã được phát lại" in again.text

        # The same event dead-lettered a second time (another offset) and replayed: the
        # consumer's inbox makes it a no-op.
        second_offset = await _dead_letter(
            dlq_broker,
            inspector,
            event.model_dump_json().encode(),
            key=event.partition_key().encode(),
            headers=kafka_headers(event),
        )
        second = await admin.post(
            "/ops/dlq/replay",
            topic=ZALO_DLQ,
            partition="0",
            offset=str(second_offset),
            reason="Bản sao của cùng sự kiện, phát lại để kiểm tra",
        )
        assert second.status_code == 303
        for _ in range(150):
            now = REGISTRY.get_sample_value("ketnoi_inbox_duplicates_total", {"consumer": "triage"})
            if (now or 0.0) > duplicates:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("triage did not see the second replay")

    assert (
        await pool.fetchval(
            "SELECT count(*) FROM case_messages WHERE event_id = $1", event.event_id
        )
        == 1
    )
    assert await pool.fetchval("SELECT message_count FROM cases WHERE oa_id = $1", OA) == 1
    actions = await pool.fetch(
        "SELECT action, reason, detail FROM audit_log WHERE action LIKE 'dlq.%' ORDER BY id"
    )
    assert [a["action"] for a in actions] == ["dlq.replay", "dlq.replay.refused", "dlq.replay"]
    assert actions[0]["reason"] == reason
    assert json.loads(actions[0]["detail"])["dlq"] == f"{ZALO_DLQ}/0/{dlq_offset}"
    assert await pool.fetchval("SELECT count(*) FROM dlq_replays") == 2

    # What triage received: the original value, key and headers, minus x-dlq-*, plus the
    # replay's own headers.
    replayed = [
        r
        for r in await read_topic(kafka_bootstrap, ZALO_EVENTS.name, since_ms=since, until=2)
        if (r.value or b"") == event.model_dump_json().encode()
    ]
    assert len(replayed) == 2
    headers = dict(replayed[0].headers)
    assert not any(k.startswith("x-dlq-") for k in headers)
    assert headers["x-replayed-by"] == b"admin"
    assert headers["x-replay-of"] == f"{ZALO_DLQ}/0/{dlq_offset}".encode()
    assert headers["ketnoi-event-id"] == event.event_id.encode()
    assert replayed[0].key == event.partition_key().encode()

    # The browser shows who replayed it, and offers no second replay.
    page = await admin.client.get("/ops/dlq", params={"topic": ZALO_DLQ})
    block = page.text.split(f'id="dlq-0-{dlq_offset}"')[1].split("</li>")[0]
    assert "Đã phát lại" in block and "admin" in block and 'action="/ops/dlq/replay"' not in block


async def _until(pool: asyncpg.Pool, sql: str, *args: Any, want: int = 1) -> None:
    for _ in range(150):
        if await pool.fetchval(sql, *args) == want:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {sql!r} == {want}")


# -- access --------------------------------------------------------------------------------------


async def test_only_administrators_reach_the_operator_pages(browser: Any) -> None:
    urls = ["/ops", "/ops/live", "/ops/dlq", f"/ops/dlq?topic={ZALO_DLQ}"]
    for username in ("officer_a", "lead_a", "supervisor", "drugs"):
        user = await browser(username)
        for url in urls:
            assert (await user.client.get(url)).status_code == 403, (username, url)
        refused = await user.post(
            "/ops/dlq/replay", topic=ZALO_DLQ, partition="0", offset="0", reason="x" * 20
        )
        assert refused.status_code == 403
        assert 'href="/ops"' not in (await user.client.get("/inbox")).text
    admin = await browser("admin")
    assert 'href="/ops"' in (await admin.client.get("/audit")).text
    no_csrf = await admin.client.post(
        "/ops/dlq/replay", data={"topic": ZALO_DLQ, "partition": "0", "offset": "0"}
    )
    assert no_csrf.status_code == 403
    short = await admin.post(
        "/ops/dlq/replay", topic=ZALO_DLQ, partition="0", offset="0", reason="vì"
    )
    assert short.status_code == 400
    unknown = await admin.post(
        "/ops/dlq/replay", topic="zalo.events.v1", partition="0", offset="0", reason="x" * 20
    )
    assert unknown.status_code == 404
    for partition, offset in (("7", "0"), ("0", "999999")):
        missing = await admin.post(
            "/ops/dlq/replay",
            topic=ZALO_DLQ,
            partition=partition,
            offset=offset,
            reason="x" * 20,
        )
        assert missing.status_code == 404
        assert "Không tìm thấy bản ghi" in missing.text


# -- services and tokens -------------------------------------------------------------------------


async def test_ops_page_shows_service_health_tokens_topics_and_lag(
    browser: Any, seeded: Any
) -> None:
    now = datetime.now(UTC)
    await seeded.pool.executemany(
        """INSERT INTO oa_tokens (oa_id, sealed_access, sealed_refresh, access_expires_at,
               needs_reauth, last_error)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [
            (
                OA,
                "sealed:v1:ACCESS-SECRET",
                "sealed:v1:REFRESH-SECRET",
                now + timedelta(hours=20),
                False,
                None,
            ),
            (
                "1234567890123456789",
                "sealed:v1:ACCESS-2",
                "sealed:v1:REFRESH-2",
                now - timedelta(hours=2),
                True,
                "PermanentError -14014",
            ),
        ],
    )
    admin = await browser("admin")
    page = await admin.client.get("/ops")
    assert page.status_code == 200
    html = page.text
    assert 'src="/static/ops.js"' in html and 'data-live-url="/ops/live"' in html
    assert 'data-service="fake" data-state="ready"' in html
    fake = html.split('data-service="fake"')[1].split("</tr>")[0]
    assert "Sẵn sàng" in fake and "Kafka: đạt" in fake and "PostgreSQL: đạt" in fake
    gone = html.split('data-service="gone"')[1].split("</tr>")[0]
    assert "Không kết nối được" in gone
    assert 'data-service="gone" data-state="unreachable"' in html
    assert "Còn hiệu lực" in html and "Công an phường A" in html
    assert re.search(r"(19\.\d|20\.0) giờ", html)
    assert "Cần cấp lại quyền" in html and "PermanentError" in html
    assert "ACCESS-SECRET" not in html and "REFRESH" not in html
    for g in ops.CONSUMER_GROUPS:
        assert f'data-group="{g.group}"' in html
    assert f'data-topic="{ZALO_EVENTS.name}"' in html and f'data-dlq="{ZALO_DLQ}"' in html
    assert "đang đo…" in html  # the first sample has no rate yet
    assert "ops-broker-error" not in html
