"""news.items.v1: news items from official sources, deduplicated and tagged."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from .base import Envelope

__all__ = ["NewsItem"]


class NewsItem(Envelope):
    """Key: source_id."""

    item_id: str
    source_id: str
    url: str
    title: str = Field(min_length=1, max_length=500)
    summary: str = ""
    published_at: AwareDatetime | None = None
    province_code: str | None = Field(default=None, description="None for national sources.")
    tags: tuple[str, ...] = ()

    def partition_key(self) -> str:
        return self.source_id
