"""Feed ingestion: the shipped samples (RSS 2.0, Atom, malformed, duplicates) served locally,
conditional GET (304), a source that times out and backs off, deduplication across sources,
tags, and news.items.v1 through the outbox — on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ketnoi_news.feeds import (
    FeedPoller,
    Source,
    default_feeds_dir,
    load_sources,
    parse_feed,
    tag,
    title_key,
    url_key,
)
from ketnoi_shared.contracts import NewsItem


class LocalFeeds(httpx.AsyncBaseTransport):
    """The sample feeds served by Starlette's StaticFiles (ETag, Last-Modified, 304), and a
    host that never answers in time."""

    def __init__(self) -> None:
        app = Starlette(routes=[Mount("/feeds", StaticFiles(directory=default_feeds_dir()))])
        self.static = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "slow.local":
            raise httpx.ReadTimeout("no answer", request=request)
        return await self.static.handle_async_request(request)


def source(name: str, province: str | None = "68", host: str = "feeds.local") -> Source:
    return Source(
        id=name.split(".", maxsplit=1)[0],
        name=name,
        url=f"http://{host}/feeds/{name}",
        province_code=province,
    )


SOURCES = [
    source("bocongan.xml", province=None),
    source("congan-lamdong.xml"),
    source("baolamdong.atom"),
    source("duplicates.xml"),
    source("malformed.xml"),
    Source(id="slow", name="slow", url="http://slow.local/feeds/bocongan.xml"),
]


def test_shipped_samples_parse():
    feeds = default_feeds_dir()
    rss = parse_feed((feeds / "bocongan.xml").read_bytes())
    atom = parse_feed((feeds / "baolamdong.atom").read_bytes())
    assert len(rss) == 4 and len(atom) == 3
    assert all(i.published_at is not None and i.published_at.tzinfo for i in rss + atom)
    assert rss[0].title.startswith("Cảnh báo thủ đoạn giả danh công an")
    assert "<p>" not in rss[0].summary
    assert atom[2].published_at == datetime(2025, 11, 22, 8, 0, tzinfo=UTC)  # published wins
    with pytest.raises(ValueError, match="unreadable"):
        parse_feed((feeds / "malformed.xml").read_bytes())
    assert len(parse_feed((feeds / "duplicates.xml").read_bytes())) == 4
    assert load_sources()[0].url == "http://127.0.0.1:8084/feeds/bocongan.xml"


def test_keys_and_tags():
    assert url_key("https://www.A.vn/x/?utm_source=rss&b=1#top") == url_key("http://a.vn/x?b=1")
    assert title_key("CẢNH BÁO: lừa đảo!") == title_key("cảnh báo lừa đảo")
    assert tag("Triệt phá đường dây mua bán ma túy") == ("drugs",)
    assert "wanted_notice" in tag("Thông báo truy nã đối tượng")
    assert "scam_warning" in tag("Cảnh báo thủ đoạn giả danh công an lừa đảo")
    assert "traffic" in tag("Xử lý vi phạm nồng độ cồn")


async def test_poll_dedup_304_timeout_and_backoff(pool: asyncpg.Pool):
    transport = LocalFeeds()
    async with httpx.AsyncClient(transport=transport) as http:
        poller = FeedPoller(pool, http, SOURCES, interval_s=300, timeout_s=0.5, backoff_max_s=3600)
        first = await poller.poll_once()
        assert first.status == {
            "bocongan": "ok",
            "congan-lamdong": "ok",
            "baolamdong": "ok",
            "duplicates": "ok",
            "malformed": "error",
            "slow": "error",
        }
        # 4 + 4 + 3 + 4 entries; the same drug story on two sources (same URL but a tracking
        # parameter), the same scam warning from the newspaper (near-identical title), and
        # two repeats inside the duplicates feed are dropped.
        assert len(first.new) == 11
        assert first.duplicates == 4
        items = await pool.fetch("SELECT * FROM news_items")
        assert len(items) == 11
        assert len({r["title_key"] for r in items}) == 11
        outbox = await pool.fetch(
            "SELECT key, value FROM outbox WHERE topic = 'news.items.v1' ORDER BY id"
        )
        published = [NewsItem.model_validate_json(bytes(r["value"])) for r in outbox]
        assert {p.item_id for p in published} == {r["item_id"] for r in items}
        by_title = {p.title: p for p in published}
        wanted = by_title[
            "Thông báo truy tìm đối tượng cướp giật tài sản tại phường Xuân Hương - Đà Lạt"
        ]
        assert "wanted_notice" in wanted.tags and wanted.province_code == "68"
        assert any("drugs" in p.tags and p.province_code in (None, "68") for p in published)
        assert bytes(outbox[0]["key"]).decode() == published[0].source_id

        states = {r["source_id"]: r for r in await pool.fetch("SELECT * FROM news_sources")}
        now = datetime.now(UTC)
        assert states["slow"]["failures"] == 1 and states["slow"]["last_error"] == "ReadTimeout"
        assert states["malformed"]["failures"] == 1
        assert states["slow"]["next_poll_at"] > now + timedelta(seconds=400)  # 600 s ± 20 %
        assert states["bocongan"]["etag"] and states["bocongan"]["failures"] == 0

        # Nothing is due before its time.
        assert (await poller.poll_once()).status == {}

        # Polled again: the server answers 304 to the conditional GET; nothing new.
        transport.requests.clear()
        again = await poller.poll_once(force=True)
        assert again.status["bocongan"] == "not_modified"
        assert again.status["baolamdong"] == "not_modified"
        assert again.new == []
        sent = next(
            r
            for r in transport.requests
            if r.url.path.endswith("bocongan.xml") and r.url.host == "feeds.local"
        )
        assert sent.headers["if-none-match"] == states["bocongan"]["etag"]

        # The failing source backs off further on each failure.
        states = {r["source_id"]: r for r in await pool.fetch("SELECT * FROM news_sources")}
        assert states["slow"]["failures"] == 2
        assert states["slow"]["next_poll_at"] > datetime.now(UTC) + timedelta(seconds=900)
