"""News settings (``KETNOI_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ketnoi_shared.settings import CommonSettings

__all__ = ["NewsSettings"]


class NewsSettings(CommonSettings):
    news_sources: Path | None = Field(
        default=None,
        description="Feed sources YAML (id, name, url, province_code); default: the packaged "
        "sample feeds served by the news service itself at /feeds/.",
    )
    news_poll_interval_s: float = Field(
        default=300, description="Seconds between two polls of one healthy feed source."
    )
    news_fetch_timeout_s: float = Field(
        default=10, description="Timeout of one feed download, in seconds."
    )
    news_backoff_max_s: float = Field(
        default=3600, description="Longest wait before polling a failing source again."
    )
    news_items_per_reply: int = Field(default=5, description="News items in one 'Tin tức' reply.")
    news_kb: Path | None = Field(
        default=None,
        description="Directory of the 'Công vụ' knowledge base YAML files (default: packaged).",
    )
    news_answer_min_score: float = Field(
        default=5.0, description="Lowest BM25 score answered without an officer."
    )
    news_answer_min_ratio: float = Field(
        default=1.1,
        description="How far the best knowledge-base match must lead the runner-up (ratio of "
        "scores) to be answered without an officer.",
    )
    news_verified_oas: str = Field(
        default="",
        description="Comma-separated OA ids that Zalo has verified (broadcast needs a "
        "verified OA; `*` for all, as in the sandbox demo).",
    )
    news_broadcast_monthly_cap: int = Field(
        default=4,
        description="Broadcasts a follower may receive per month (Zalo package: Basic 1, "
        "Trial/Advanced 4, Premium 6); never more than one a day.",
    )
    news_broadcast_target: str = Field(
        default='{"gender": "0"}',
        description="`recipient.target` of broadcasts as JSON (README of the Zalo contract "
        "§5.2; the value format is a configuration choice). Default: every follower.",
    )
    news_article_cover_url: str = Field(
        default="https://congan.example.gov.vn/static/canh-bao.jpg",
        description="Cover photo URL of broadcast articles (Zalo requires one).",
    )
    news_workers: int = Field(
        default=4,
        description="Partitions of zalo.events.v1 and of reports.triaged.v1 handled in parallel "
        "per process (each partition stays in order).",
    )
