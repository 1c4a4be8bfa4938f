"""The media worker on the real broker and PostgreSQL, the CDN played by a local HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from PIL import Image

from ketnoi_media.app import create_app
from ketnoi_media.fetch import Fetcher
from ketnoi_media.process import ORIGINAL_PURPOSE
from ketnoi_media.settings import MediaSettings
from ketnoi_media.worker import MediaWorker
from ketnoi_shared.contracts import TopicSpec, ZaloEvent
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import encode, ensure_topics, kafka_headers

from ..conftest import now_ms, read_topic
from ..reliability.faultproxy import FaultProxy
from .conftest import GPS_IFD, HTML, PDF, TOKEN, Cdn, Events, attachment, jpeg_with_gps

MIB = 1 << 20


def settings_for(kafka_bootstrap: str, database_url: str, keys: dict[str, str]) -> MediaSettings:
    return MediaSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        media_max_bytes_video=MIB,
        media_read_timeout_s=0.3,
        media_download_deadline_s=2,
        media_fetch_attempts=2,
        media_fetch_backoff_s=0.01,
        retry_backoff_s=0.01,
        **keys,
    )


async def wait_rows(pool: asyncpg.Pool, event_ids: list[str], n: int, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = await pool.fetchval(
            "SELECT count(*) FROM media_objects WHERE event_id = ANY($1::text[])"
            " AND status <> 'pending'",
            event_ids,
        )
        if got >= n:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{got} of {n} media rows after {timeout} s")


async def media_topic(kafka_bootstrap: str, *, partitions: int) -> tuple[str, str]:
    """A fresh topic shaped like zalo.events.v1, and its DLQ; their names."""
    topic = "test.media." + uuid.uuid4().hex[:10]
    spec = TopicSpec(topic, partitions, "pseudonym", ZaloEvent, 3_600_000, "test")
    dlq = TopicSpec(topic + ".dlq", 1, "same", None, 3_600_000, "test")
    await ensure_topics(kafka_bootstrap, [spec, dlq])
    return topic, dlq.name


@pytest.fixture
async def direct_worker(
    database_url: str, pool: asyncpg.Pool, keys: dict[str, str], protector: IdentityProtector
) -> AsyncIterator[MediaWorker]:
    """A worker driven by the test itself (no consumer, no downloader loop)."""
    fetcher = Fetcher(attempts=1)
    settings = settings_for("127.0.0.1:9", database_url, keys)
    yield MediaWorker(pool=pool, fetcher=fetcher, protector=protector, settings=settings)
    await fetcher.aclose()


async def test_attachments_are_fetched_checked_sealed_and_stripped_once(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    protector: IdentityProtector,
    cdn: Cdn,
    events: Events,
    caplog: pytest.LogCaptureFixture,
):
    topic, dlq = await media_topic(kafka_bootstrap, partitions=3)
    tag = uuid.uuid4().hex[:8]
    photo = jpeg_with_gps()
    cdn.files[f"{tag}-photo.jpg"] = photo
    cdn.files[f"{tag}-scan.pdf"] = PDF
    cdn.files[f"{tag}-fake.jpg"] = HTML
    cdn.files[f"{tag}-after.jpg"] = photo
    user, slow_user = "8123456789012345678", "8123456789012349999"
    tip = events.message(
        [
            attachment("image", cdn.url(f"{tag}-photo.jpg"), thumbnail=cdn.url("thumb.jpg")),
            {
                "type": "location",
                "payload": {"coordinates": {"latitude": "11.9", "longitude": "108.4"}},
            },
            attachment(
                "file", cdn.url(f"{tag}-scan.pdf"), name="to_giac.pdf", size="77", type="pdf"
            ),
        ],
        user=user,
    )
    refused = events.message(
        [
            attachment("image", cdn.url(f"{tag}-fake.jpg")),
            attachment("video", cdn.url(f"endless-{tag}.mp4")),
            attachment("image", cdn.url(f"expired-{tag}.jpg")),
            attachment("file", cdn.url(f"{tag}-big.zip"), size=str(100 * MIB), name="big.zip"),
        ],
        user=user,
    )
    slow = events.message([attachment("image", cdn.url(f"hang-{tag}.jpg"))], user=slow_user)
    after = events.message([attachment("image", cdn.url(f"{tag}-after.jpg"))], user=slow_user)
    app = create_app(
        settings_for(kafka_bootstrap, database_url, keys), topic=topic, group_id=f"media-{tag}"
    )
    since = now_ms()
    caplog.set_level(logging.DEBUG)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        with structlog.testing.capture_logs() as logs:
            async with app.router.lifespan_context(app):
                for event in (tip, refused, slow, after, tip):  # the tip is redelivered
                    await producer.send_and_wait(
                        topic,
                        encode(event),
                        key=event.partition_key().encode(),
                        headers=kafka_headers(event),
                    )
                await producer.send_and_wait(topic, b"\x00 not an event", key=b"x")
                ids = [tip.event_id, refused.event_id, slow.event_id, after.event_id]
                await wait_rows(pool, ids, 8)
                await asyncio.sleep(0.5)  # time for the redelivered tip to be skipped
    finally:
        await producer.stop()

    rows = {
        (r["event_id"], r["position"]): r
        for r in await pool.fetch("SELECT * FROM media_objects ORDER BY id")
    }
    assert len(rows) == 8, "one row per attachment, the redelivery added none"
    assert cdn.hits[f"/media/{tag}-photo.jpg"] == 1, "downloaded once"

    stored = rows[(tip.event_id, 0)]
    assert stored["status"] == "stored" and stored["error"] is None
    assert stored["msg_id"] == tip.message.msg_id and stored["oa_id"] == tip.oa_id
    assert stored["citizen_pseudonym"] == tip.citizen.pseudonym
    assert (stored["kind"], stored["content_type"], stored["size_bytes"]) == (
        "image",
        "image/jpeg",
        len(photo),
    )
    assert stored["sha256"] == hashlib.sha256(photo).hexdigest()
    assert protector.unseal_bytes(stored["sealed_original"], purpose=ORIGINAL_PURPOSE) == photo
    assert stored["display_content_type"] == "image/jpeg"
    with Image.open(io.BytesIO(stored["display"])) as shown:
        shown.load()
        assert shown.size == (32, 64)
        assert not shown.getexif().get_ifd(GPS_IFD) and not shown.getexif()
    assert b"Exif" not in stored["display"]

    pdf = rows[(tip.event_id, 2)]
    assert (pdf["status"], pdf["file_name"], pdf["display"]) == ("stored", "to_giac.pdf", PDF)
    assert (tip.event_id, 1) not in rows, "a location is not media"

    outcomes = {
        pos: (rows[(refused.event_id, pos)]["status"], rows[(refused.event_id, pos)]["error"])
        for pos in range(4)
    }
    assert outcomes == {
        0: ("rejected", "type_not_allowed"),
        1: ("rejected", "too_large"),
        2: ("rejected", "expired"),
        3: ("rejected", "too_large"),
    }
    assert all(rows[(refused.event_id, p)]["sealed_original"] is None for p in range(4))
    assert cdn.hits[f"/media/{tag}-big.zip"] == 0, "Zalo's declared size is enough to refuse"

    failed = rows[(slow.event_id, 0)]
    assert (failed["status"], failed["error"], failed["attempts"]) == ("failed", "timeout", 2)
    assert cdn.hits[f"/media/hang-{tag}.jpg"] == 2
    assert rows[(after.event_id, 0)]["status"] == "stored", "the partition kept flowing"

    dead = await read_topic(kafka_bootstrap, dlq, since_ms=since, until=1, timeout=5)
    assert [r.value for r in dead] == [b"\x00 not an event"]
    assert dict(dead[0].headers)["x-dlq-reason"] == b"undecodable"

    # Nothing identifying or secret in any log line of the worker, structlog's or the standard
    # library's (httpx included); the test's producer and the fake CDN's access log aside.
    ours = [r for r in caplog.records if not r.name.startswith(("aiokafka", "uvicorn"))]
    assert any(r.name == "httpx" for r in ours), "httpx request lines are there, redacted"
    text = repr(logs) + "\n".join(r.getMessage() + repr(r.__dict__) for r in ours)
    assert any(e.get("status") == "stored" and e.get("host") == "127.0.0.1" for e in logs)
    for secret in (TOKEN, user, slow_user, "to_giac", "exp="):
        assert secret not in text


async def test_recorded_work_survives_a_crash_and_a_redelivery_adds_none(
    direct_worker: MediaWorker, pool: asyncpg.Pool, cdn: Cdn, events: Events
):
    """The consumer only records the work; a downloader that dies mid-download leaves its row
    leased, and the row is taken again when the lease ends (at most a few times)."""
    tag = uuid.uuid4().hex[:8]
    cdn.files[f"{tag}-a.jpg"] = cdn.files[f"{tag}-b.jpg"] = jpeg_with_gps()
    event = events.message(
        [attachment("image", cdn.url(f"{tag}-a.jpg")), attachment("image", cdn.url(f"{tag}-b.jpg"))]
    )
    worker = direct_worker
    assert await worker.handle(event) == 2
    assert await worker.handle(event) == 0, "the inbox knows the event"
    pending = await pool.fetch("SELECT status, sealed_url FROM media_objects")
    assert [r["status"] for r in pending] == ["pending", "pending"]
    assert all(cdn.url("") not in bytes(r["sealed_url"]).decode("latin-1") for r in pending)
    assert sum(cdn.hits.values()) == 0, "nothing fetched by the consumer"

    # A downloader leases one row and dies (its lease is left to run out).
    crashed = await pool.fetchval(
        "UPDATE media_objects SET lease_until = now() + interval '1 hour', leases = 1"
        " WHERE position = 0 RETURNING id"
    )
    assert await worker.run_once(10) == 1, "a leased row is not taken"
    await worker.drain()
    await pool.execute("UPDATE media_objects SET lease_until = now() WHERE id = $1", crashed)
    assert await worker.run_once(10) == 1, "taken again once its lease is over"
    await worker.drain()
    assert await worker.run_once(10) == 0, "nothing left"
    rows = await pool.fetch("SELECT * FROM media_objects ORDER BY position")
    assert [(r["status"], r["leases"]) for r in rows] == [("stored", 2), ("stored", 1)]
    assert all(r["sealed_url"] is None and r["lease_until"] is None for r in rows)
    assert cdn.hits[f"/media/{tag}-a.jpg"] == 1
    assert cdn.hits[f"/media/{tag}-b.jpg"] == 1


async def test_a_row_that_keeps_killing_its_downloader_is_abandoned(
    direct_worker: MediaWorker, pool: asyncpg.Pool, cdn: Cdn, events: Events
):
    tag = uuid.uuid4().hex[:8]
    cdn.files[f"{tag}-a.jpg"] = jpeg_with_gps()
    event = events.message([attachment("image", cdn.url(f"{tag}-a.jpg"))])
    await direct_worker.handle(event)
    await pool.execute("UPDATE media_objects SET leases = 3")  # three downloaders died on it
    assert await direct_worker.run_once(10) == 1
    await direct_worker.drain()
    row = await pool.fetchrow("SELECT status, error, sealed_url FROM media_objects")
    assert (row["status"], row["error"], row["sealed_url"]) == ("failed", "abandoned", None)
    assert cdn.hits[f"/media/{tag}-a.jpg"] == 0


def _postgres_address(database_url: str) -> tuple[str, int] | str:
    """Where the test database listens: host and port, or the embedded one's Unix socket."""
    url = urlsplit(database_url)
    host = parse_qs(url.query).get("host", [url.hostname or "127.0.0.1"])[0]
    if not host.startswith("/"):
        return host, url.port or 5432
    sockets = [p for p in Path(host).glob(".s.PGSQL.*") if not p.name.endswith(".lock")]
    return str(sockets[0])


async def test_a_settle_that_cannot_reach_the_database_is_retried_not_left_to_the_lease(
    database_url: str, keys: dict[str, str], protector: IdentityProtector, cdn: Cdn, events: Events
):
    """Reliability finding 17: a download done while PostgreSQL is unreachable is settled
    once it is back, not left pending until its lease ends (minutes)."""
    proxy = await FaultProxy(_postgres_address(database_url)).start()
    url = urlsplit(database_url)
    login = url.username + (f":{url.password}" if url.password else "")
    proxied = f"postgresql://{login}@{proxy.address}{url.path}"
    pool = await asyncpg.create_pool(proxied, min_size=1, max_size=1)
    fetcher = Fetcher(attempts=1)
    worker = MediaWorker(
        pool=pool,
        fetcher=fetcher,
        protector=protector,
        settings=settings_for("127.0.0.1:9", database_url, keys),
    )
    tag = uuid.uuid4().hex[:8]
    cdn.files[f"slow-{tag}.jpg"] = jpeg_with_gps()
    event = events.message([attachment("image", cdn.url(f"slow-{tag}.jpg"))])
    try:
        await worker.handle(event)
        assert await worker.run_once(10) == 1  # leased; the download takes a second
        await proxy.down()  # the database unreachable while it downloads, and after
        await asyncio.sleep(2.0)
        await proxy.up()
        await asyncio.wait_for(worker.drain(), 30)
        row = await pool.fetchrow(
            "SELECT status, lease_until, leases FROM media_objects WHERE event_id = $1",
            event.event_id,
        )
    finally:
        await pool.close()
        await fetcher.aclose()
        await proxy.stop()
    assert (row["status"], row["lease_until"], row["leases"]) == ("stored", None, 1)


async def test_a_hanging_url_does_not_hold_up_the_attachments_behind_it(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    cdn: Cdn,
    events: Events,
):
    """Reliability finding 10: all on one partition, a hanging URL first, then good photos."""
    topic, _ = await media_topic(kafka_bootstrap, partitions=1)
    tag = uuid.uuid4().hex[:8]
    hanging = [
        events.message([attachment("image", cdn.url(f"forever-{tag}-{i}.jpg"))]) for i in (1, 2)
    ]
    good = []
    for i in range(3):
        cdn.files[f"{tag}-{i}.jpg"] = jpeg_with_gps()
        good.append(events.message([attachment("image", cdn.url(f"{tag}-{i}.jpg"))]))
    settings = settings_for(kafka_bootstrap, database_url, keys).model_copy(
        update={"media_read_timeout_s": 30, "media_download_deadline_s": 60}
    )
    app = create_app(settings, topic=topic, group_id=f"media-{tag}")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            for event in (*hanging, *good):
                await producer.send_and_wait(
                    topic, encode(event), key=b"same", headers=kafka_headers(event)
                )
            await wait_rows(pool, [e.event_id for e in good], 3, timeout=15)
            statuses = await pool.fetch(
                "SELECT event_id, status FROM media_objects WHERE event_id = ANY($1::text[])",
                [e.event_id for e in hanging],
            )
            assert sorted(r["status"] for r in statuses) == ["pending", "pending"]
    finally:
        await producer.stop()
    # Shut down mid-download: the hanging rows are handed back, not counted as a lease.
    rows = await pool.fetch(
        "SELECT status, leases, lease_until FROM media_objects WHERE event_id = ANY($1::text[])",
        [e.event_id for e in hanging],
    )
    assert [(r["status"], r["leases"], r["lease_until"]) for r in rows] == [
        ("pending", 0, None),
        ("pending", 0, None),
    ]
