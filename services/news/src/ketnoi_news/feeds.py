"""News ingestion: poll RSS/Atom sources, keep what is new, tag it, publish ``news.items.v1``.

* **Parsing** is feedparser's (RSS 0.9x/1.0/2.0, Atom, lenient with malformed XML: a feed it
  can read partly still gives its entries; one with no entry at all is an error).
* **Conditional GET**: the ETag and Last-Modified of the last answer are sent back
  (If-None-Match, If-Modified-Since); a 304 costs nothing.
* **Per-source backoff**: a failing source (timeout, HTTP error, unreadable feed) is polled
  again after ``interval × 2^failures`` (jittered, capped); one bad source never delays the
  others, which are fetched concurrently.
* **Deduplication across sources**: an item is new when neither its canonical URL (scheme,
  ``www.``, fragment, tracking parameters and trailing slash ignored) nor its normalised title
  (folded, punctuation-free) is known, and its title is not near-identical (token Jaccard
  ≥ 0.85) to a title of the last two weeks.
* **Tags** come from rules over the folded title and summary (:data:`TAG_RULES`).

Items are stored and queued on the outbox in one transaction with the source's new state.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import feedparser
import httpx
import structlog
import yaml

from ketnoi_shared.contracts import NEWS_ITEMS, NewsItem
from ketnoi_shared.db import enqueue_many
from ketnoi_shared.text import normalize, tokens

__all__ = [
    "TAG_RULES",
    "FeedPoller",
    "ParsedItem",
    "PollResult",
    "Source",
    "default_feeds_dir",
    "load_sources",
    "parse_feed",
    "tag",
    "title_key",
    "url_key",
]

log = structlog.get_logger("ketnoi.news")

#: Tag → folded phrases; an item gets every tag one of whose phrases occurs in it.
TAG_RULES: Final[dict[str, tuple[str, ...]]] = {
    "scam_warning": (
        "lua dao",
        "gia danh",
        "mao danh",
        "chiem doat",
        "cuoc goi la",
        "link la",
        "dau tu tien ao",
        "viec nhe luong cao",
        "app vay",
    ),
    "wanted_notice": ("truy na", "truy tim", "dang bi truy", "thong bao tim", "dau thu"),
    "traffic": (
        "giao thong",
        "tai nan",
        "csgt",
        "nong do con",
        "dua xe",
        "lan chiem",
        "toc do",
        "mu bao hiem",
        "ket xe",
        "un tac",
    ),
    "drugs": ("ma tuy", "the da", "heroin", "ke tam", "thuoc lac", "can sa", "cai nghien"),
    "fire_rescue": ("chay no", "phong chay", "pccc", "cuu nan", "cuu ho", "hoa hoan"),
    "cybercrime": ("an ninh mang", "cong nghe cao", "hack", "chiem doat tai khoan"),
    "public_order": ("danh bac", "co bac", "gay roi", "trom cap", "cuop", "tin dung den"),
    "procedures": ("thu tuc", "dang ky xe", "bien so", "can cuoc", "dinh danh", "cu tru"),
}
_TRACKING: Final = re.compile(r"^(utm_.*|fbclid|gclid|zarsrc|ref)$")
_WORD_RE: Final = re.compile(r"[0-9a-z]+")
_NEAR: Final = 0.85


def default_feeds_dir() -> Path:
    return Path(str(resources.files("ketnoi_news") / "data" / "feeds"))


def default_sources_path() -> Path:
    return Path(str(resources.files("ketnoi_news") / "data" / "sources.yaml"))


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    name: str
    url: str
    province_code: str | None = None


def load_sources(
    path: Path | None = None, *, self_url: str = "http://127.0.0.1:8084"
) -> list[Source]:
    """Sources from YAML (``sources: [{id, name, url, province_code}]``); ``{self}`` in a URL
    is this service's own address (where the sample feeds are served)."""
    raw = yaml.safe_load((path or default_sources_path()).read_text(encoding="utf-8")) or {}
    out = []
    for s in raw.get("sources", ()):
        code = s.get("province_code")
        out.append(
            Source(
                id=str(s["id"]),
                name=str(s.get("name") or s["id"]),
                url=str(s["url"]).replace("{self}", self_url.rstrip("/")),
                province_code=str(code) if code is not None else None,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ParsedItem:
    url: str
    title: str
    summary: str
    published_at: datetime | None


def url_key(url: str) -> str:
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)))
    return urlunsplit(("", host, parts.path.rstrip("/") or "/", query, "")).lstrip("/")


def title_key(title: str) -> str:
    return " ".join(_WORD_RE.findall(normalize(title).folded))


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(a.split()), set(b.split())
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def tag(title: str, summary: str = "") -> tuple[str, ...]:
    text = " " + " ".join(tokens(normalize(f"{title} {summary}").folded)) + " "
    return tuple(t for t, phrases in TAG_RULES.items() if any(f" {p} " in text for p in phrases))


def _clean(html: str) -> str:
    text = re.sub(r"<[^>]+>", " ", html or "")
    return " ".join(text.split())[:1000]


def parse_feed(content: bytes, *, headers: dict[str, str] | None = None) -> list[ParsedItem]:
    """Entries of an RSS or Atom document; raises ``ValueError`` when nothing can be read."""
    parsed: Any = feedparser.parse(content, response_headers=headers or {})
    items = []
    for entry in parsed.entries:
        link = entry.get("link") or next(
            (link["href"] for link in entry.get("links", ()) if link.get("href")), None
        )
        title = " ".join(str(entry.get("title") or "").split())
        if not link or not title:
            continue
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None
        items.append(
            ParsedItem(
                url=str(link).strip(),
                title=title[:500],
                summary=_clean(str(entry.get("summary") or "")),
                published_at=published,
            )
        )
    if not items and parsed.get("bozo"):
        raise ValueError(f"unreadable feed: {type(parsed.get('bozo_exception')).__name__}")
    return items


@dataclass
class PollResult:
    """What one polling round did, per source and in total."""

    new: list[NewsItem] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0


class FeedPoller:
    def __init__(
        self,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        sources: Sequence[Source],
        *,
        interval_s: float = 300,
        timeout_s: float = 10,
        backoff_max_s: float = 3600,
    ) -> None:
        self.pool = pool
        self.http = http
        self.sources = list(sources)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.backoff_max_s = backoff_max_s

    async def poll_once(self, *, force: bool = False) -> PollResult:
        """Poll every due source (every source with ``force``) concurrently."""
        await self.pool.executemany(
            """INSERT INTO news_sources (source_id, url) VALUES ($1, $2)
               ON CONFLICT (source_id) DO UPDATE SET url = EXCLUDED.url""",
            [(s.id, s.url) for s in self.sources],
        )
        state = {
            r["source_id"]: r
            for r in await self.pool.fetch(
                """SELECT *, next_poll_at <= now() AS due FROM news_sources
                   WHERE source_id = ANY($1::text[])""",
                [s.id for s in self.sources],
            )
        }
        due = [s for s in self.sources if force or state[s.id]["due"]]
        result = PollResult()
        outcomes = await asyncio.gather(*(self._poll(s, state[s.id], result) for s in due))
        for source, status in zip(due, outcomes, strict=True):
            result.status[source.id] = status
        return result

    async def _poll(self, source: Source, row: asyncpg.Record, result: PollResult) -> str:
        headers = {"User-Agent": "Ketnoi-news/1.0 (+feed reader)"}
        if row["etag"]:
            headers["If-None-Match"] = row["etag"]
        if row["last_modified"]:
            headers["If-Modified-Since"] = row["last_modified"]
        try:
            response = await self.http.get(source.url, headers=headers, timeout=self.timeout_s)
            if response.status_code == 304:
                await self._done(source, row, status="not_modified")
                return "not_modified"
            response.raise_for_status()
            parsed = parse_feed(
                response.content, headers={"content-type": response.headers.get("content-type", "")}
            )
        except (httpx.HTTPError, ValueError) as exc:
            failures = row["failures"] + 1
            delay = min(self.backoff_max_s, self.interval_s * 2 ** min(failures, 16))
            delay *= 0.8 + random.random() * 0.4  # noqa: S311 - jitter, not crypto
            error = type(exc).__name__
            if isinstance(exc, httpx.HTTPStatusError):
                error = f"HTTP {exc.response.status_code}"
            await self.pool.execute(
                """UPDATE news_sources SET failures = $2, last_error = $3, last_status = 'error',
                     last_polled_at = now(), next_poll_at = now() + make_interval(secs => $4)
                   WHERE source_id = $1""",
                source.id,
                failures,
                error,
                delay,
            )
            log.warning("feed source failed", source=source.id, error=error, failures=failures)
            return "error"
        async with self.pool.acquire() as conn, conn.transaction():
            new, duplicates = await self._store(conn, source, parsed)
            await self._done(
                source,
                row,
                status="ok",
                conn=conn,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
        result.new.extend(new)
        result.duplicates += duplicates
        return "ok"

    async def _done(
        self,
        source: Source,
        row: asyncpg.Record,
        *,
        status: str,
        conn: asyncpg.Connection | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> None:
        await (conn or self.pool).execute(
            """UPDATE news_sources SET failures = 0, last_error = NULL, last_status = $2,
                 etag = COALESCE($3, etag), last_modified = COALESCE($4, last_modified),
                 last_polled_at = now(), next_poll_at = now() + make_interval(secs => $5)
               WHERE source_id = $1""",
            source.id,
            status,
            etag,
            last_modified,
            self.interval_s,
        )

    async def _store(
        self, conn: asyncpg.Connection, source: Source, parsed: Sequence[ParsedItem]
    ) -> tuple[list[NewsItem], int]:
        recent = [
            r["title_key"]
            for r in await conn.fetch(
                "SELECT title_key FROM news_items WHERE fetched_at > now() - interval '14 days'"
            )
        ]
        fetched = datetime.now(UTC)
        new: list[NewsItem] = []
        duplicates = 0
        for p in parsed:
            ukey, tkey = url_key(p.url), title_key(p.title)
            if not tkey or any(_jaccard(tkey, seen) >= _NEAR for seen in recent):
                duplicates += 1
                continue
            item_id = "n" + hashlib.sha256(ukey.encode()).hexdigest()[:24]
            tags = tag(p.title, p.summary)
            inserted = await conn.fetchval(
                """INSERT INTO news_items (item_id, source_id, url, url_key, title, title_key,
                       summary, published_at, province_code, tags, fetched_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT DO NOTHING RETURNING true""",
                item_id,
                source.id,
                p.url,
                ukey,
                p.title,
                tkey,
                p.summary,
                p.published_at,
                source.province_code,
                list(tags),
                fetched,
            )
            if not inserted:
                duplicates += 1
                continue
            recent.append(tkey)
            new.append(
                NewsItem(
                    event_id=f"news:{item_id}",
                    occurred_at=p.published_at or fetched,
                    correlation_id=item_id,
                    item_id=item_id,
                    source_id=source.id,
                    url=p.url,
                    title=p.title,
                    summary=p.summary,
                    published_at=p.published_at,
                    province_code=source.province_code,
                    tags=tags,
                )
            )
        await enqueue_many(conn, [(NEWS_ITEMS, item) for item in new])
        return new, duplicates


def backoff_window(failures: int, *, interval_s: float, max_s: float) -> timedelta:
    """The un-jittered wait after ``failures`` consecutive failures (for docs and tests)."""
    return timedelta(seconds=min(max_s, interval_s * 2 ** min(failures, 16)))
