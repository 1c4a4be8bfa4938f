"""Fixtures for news tests: a small unit directory in a real PostgreSQL, the news service, and
Zalo events made by ingest's own normaliser from the shared fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ketnoi_news.app import build_service
from ketnoi_news.service import NewsService
from ketnoi_news.settings import NewsSettings
from ketnoi_shared.identity import IdentityProtector
from ketnoi_triage.directory import upsert_units

from ..triage.conftest import (
    OA,
    EventFactory,
    engine,  # noqa: F401 - the triage model, loaded once
)

__all__ = ["OA", "UNITS"]

UNITS: list[dict[str, Any]] = [
    {"id": "ld-ca-tinh", "kind": "province", "code": "68", "name": "Công an tỉnh Lâm Đồng"},
    {
        "id": "ld-xa-xuan-huong",
        "kind": "commune",
        "code": "24778",
        "name": "Công an phường Xuân Hương - Đà Lạt",
        "parent": "ld-ca-tinh",
        "oa_ids": [OA],
    },
]


@pytest.fixture(scope="session")
def news_service() -> NewsService:
    return build_service(NewsSettings())


@pytest.fixture
async def units(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await upsert_units(conn, UNITS)


@pytest.fixture
def events(fixtures_dir: Path, protector: IdentityProtector) -> EventFactory:
    return EventFactory(fixtures_dir, protector)
