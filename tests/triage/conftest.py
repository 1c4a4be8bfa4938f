"""Fixtures for triage tests: a small unit directory in a real PostgreSQL, events made by
ingest's own normaliser from the Zalo fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ketnoi_ingest.normalize import normalize, read_envelope
from ketnoi_shared.contracts import ZaloEvent
from ketnoi_shared.identity import IdentityProtector
from ketnoi_triage.directory import Directory, upsert_units
from ketnoi_triage.engine import Triage
from ketnoi_triage.routing import RoutingRules, default_rules_path
from ketnoi_triage.service import TriageService

OA = "4123456789012345678"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

TEST_UNITS: list[dict[str, Any]] = [
    {"id": "ld-ca-tinh", "kind": "province", "code": "68", "name": "Công an tỉnh Lâm Đồng"},
    {
        "id": "ld-truc-ban",
        "kind": "duty_desk",
        "name": "Trực ban Công an tỉnh",
        "parent": "ld-ca-tinh",
    },
    {
        "id": "ld-pc-ma-tuy",
        "kind": "department",
        "name": "Phòng CSĐT tội phạm về ma túy",
        "parent": "ld-ca-tinh",
    },
    {"id": "ld-pc-giao-thong", "kind": "department", "name": "Phòng CSGT", "parent": "ld-ca-tinh"},
    {"id": "ld-pc-hinh-su", "kind": "department", "name": "Phòng CSHS", "parent": "ld-ca-tinh"},
    {"id": "ld-pc-an-ninh-mang", "kind": "department", "name": "Phòng ANM", "parent": "ld-ca-tinh"},
    {"id": "ld-pc-qlhc", "kind": "department", "name": "Phòng QLHC", "parent": "ld-ca-tinh"},
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
def engine() -> Triage:
    return Triage.load()


@pytest.fixture
async def triage_service(pool: asyncpg.Pool, engine: Triage) -> TriageService:
    async with pool.acquire() as conn:
        await upsert_units(conn, TEST_UNITS)
    return TriageService(
        engine=engine,
        rules=RoutingRules(default_rules_path()),
        directory=await Directory.fetch(pool),
    )


class EventFactory:
    """Zalo events as ingest would publish them, from the shared fixtures."""

    def __init__(self, fixtures_dir: Path, protector: IdentityProtector) -> None:
        self.dir = fixtures_dir / "webhook"
        self.protector = protector
        self.counter = 0

    def make(
        self,
        name: str,
        *,
        user: str = "8123456789012345678",
        at: datetime = T0,
        text: str | None = None,
        **message: Any,
    ) -> ZaloEvent:
        body = json.loads((self.dir / f"{name}.json").read_text(), parse_int=str, parse_float=str)
        self.counter += 1
        for side in ("sender", "follower"):
            if side in body and body[side].get("id") != OA:
                body[side]["id"] = user
        if "user_id" in body:
            body["user_id"] = user
        if name.startswith("oa_") or name in ("user_received_message", "user_seen_message"):
            body["recipient"]["id"] = user
        body["timestamp"] = str(int(at.timestamp() * 1000))
        if "message" in body:
            body["message"]["msg_id"] = f"m{self.counter:06d}{user[-4:]}"
            if text is not None:
                body["message"]["text"] = text
            body["message"].update(message)
        event = normalize(body, read_envelope(body), oa_id=OA, protect=self.protector)
        assert event is not None
        return event


@pytest.fixture
def events(fixtures_dir: Path, protector: IdentityProtector) -> EventFactory:
    return EventFactory(fixtures_dir, protector)


def later(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)
