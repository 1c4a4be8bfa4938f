"""Console fixtures: a real PostgreSQL with a small unit directory, accounts of two communes,
a department and the province, cases written as triage writes them, and the console app
itself (its lifespan runs the real broker consumer) behind an httpx client."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from ketnoi_console.access import Role
from ketnoi_console.app import create_app
from ketnoi_console.auth import add_account
from ketnoi_console.settings import ConsoleSettings
from ketnoi_shared.identity import IdentityProtector

OA = "4123456789012345678"
PASSWORD = "mat-khau-thu-nghiem-1"

UNITS: list[dict[str, Any]] = [
    {"id": "ld-ca-tinh", "kind": "province", "code": "68", "name": "Công an tỉnh Lâm Đồng"},
    {"id": "ld-truc-ban", "kind": "duty_desk", "name": "Trực ban", "parent": "ld-ca-tinh"},
    {
        "id": "ld-pc-ma-tuy",
        "kind": "department",
        "name": "Phòng CSĐT ma túy",
        "parent": "ld-ca-tinh",
    },
    {
        "id": "ld-xa-a",
        "kind": "commune",
        "code": "24778",
        "name": "Công an phường A",
        "parent": "ld-ca-tinh",
        "oa_ids": [OA],
    },
    {
        "id": "ld-xa-b",
        "kind": "commune",
        "code": "24781",
        "name": "Công an phường B",
        "parent": "ld-ca-tinh",
    },
    {"id": "other-province", "kind": "province", "code": "01", "name": "Công an tỉnh khác"},
]

ACCOUNTS = {
    "officer_a": ("Cán bộ A", Role.OFFICER, "ld-xa-a"),
    "lead_a": ("Lãnh đạo A", Role.LEAD, "ld-xa-a"),
    "officer_b": ("Cán bộ B", Role.OFFICER, "ld-xa-b"),
    "drugs": ("Cán bộ ma túy", Role.OFFICER, "ld-pc-ma-tuy"),
    "supervisor": ("Giám sát tỉnh", Role.SUPERVISOR, "ld-ca-tinh"),
    "admin": ("Quản trị", Role.ADMIN, "ld-ca-tinh"),
}


@dataclass
class Seeded:
    pool: asyncpg.Pool
    accounts: dict[str, int]
    protector: IdentityProtector


async def _load_units(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        """INSERT INTO units (id, kind, code, name, parent_id, oa_ids)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [
            (u["id"], u["kind"], u.get("code"), u["name"], u.get("parent"), u.get("oa_ids", []))
            for u in UNITS
        ],
    )


@pytest.fixture
async def seeded(pool: asyncpg.Pool, protector: IdentityProtector) -> Seeded:
    async with pool.acquire() as conn:
        await _load_units(conn)
        accounts = {
            username: await add_account(
                conn,
                username=username,
                display_name=name,
                role=role,
                unit_id=unit,
                password=PASSWORD,
            )
            for username, (name, role, unit) in ACCOUNTS.items()
        }
    return Seeded(pool=pool, accounts=accounts, protector=protector)


async def make_case(
    seeded: Seeded,
    *,
    owner: str,
    text: str = "Có nhóm thanh niên tụ tập đánh bạc ở hẻm 12 đường Phan Đình Phùng",
    info: tuple[str, ...] = (),
    urgency: str = "normal",
    category: str = "social_evils",
    subcategory: str | None = "gambling",
    lane: str = "tips",
    user_id: str | None = None,
    last_interaction: datetime | None = None,
    attachments: list[dict[str, Any]] | None = None,
    name: str | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    """A case as triage leaves it: case, message, contact (sealed)."""
    protector = seeded.protector
    user_id = user_id or str(8_000_000_000_000_000_000 + uuid.uuid4().int % 10**15)
    pseudonym = protector.pseudonym(user_id)
    case_id = uuid.uuid4()
    reference = "LD-" + uuid.uuid4().hex[:5].upper()
    now = datetime.now(UTC)
    event_id = f"user_send_text:{uuid.uuid4().hex}"
    from ketnoi_shared.text import normalize  # noqa: PLC0415

    async with seeded.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO cases (id, reference, oa_id, citizen_pseudonym, status, category,
                   subcategory, urgency, confidence, explanation, owner_unit_id, info_unit_ids,
                   lane, location, location_unknown, message_count, opened_at, last_message_at,
                   search_text)
               VALUES ($1, $2, $3, $4, 'new', $5, $6, $7, 0.8, 'Từ khóa: đánh bạc', $8, $9, $10,
                   $11::jsonb, false, 1, $12, $12, $13)""",
            case_id,
            reference,
            OA,
            pseudonym,
            category,
            subcategory,
            urgency,
            owner,
            list(info),
            lane,
            json.dumps({"ward_code": "24778", "ward_name": "Phường A", "source": "text"}),
            now,
            normalize(text).folded,
        )
        await conn.execute(
            """INSERT INTO case_messages (case_id, event_id, msg_id, event_name, text,
                   attachments, occurred_at)
               VALUES ($1, $2, $3, 'user_send_text', $4, $5::jsonb, $6)""",
            case_id,
            event_id,
            uuid.uuid4().hex,
            text,
            json.dumps(attachments or []),
            now,
        )
        await conn.execute(
            """INSERT INTO citizen_contacts (oa_id, citizen_pseudonym, sealed_user_id,
                   last_interaction_at, sealed_name, sealed_phone)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE
               SET last_interaction_at = EXCLUDED.last_interaction_at""",
            OA,
            pseudonym,
            protector.seal(user_id, purpose="zalo_user_id"),
            last_interaction or now,
            protector.seal(name, purpose="name") if name else None,
            protector.seal(phone, purpose="phone") if phone else None,
        )
    return {
        "id": str(case_id),
        "reference": reference,
        "event_id": event_id,
        "user_id": user_id,
        "pseudonym": pseudonym,
    }


@pytest.fixture
def console_settings(
    database_url: str, kafka_bootstrap: str, keys: dict[str, str], tmp_path: Any
) -> ConsoleSettings:
    return ConsoleSettings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        console_session_secret="s" * 40,
        data_dir=tmp_path,
        console_login_max_failures=3,
        **keys,
    )


@pytest.fixture
async def app_client(
    console_settings: ConsoleSettings, seeded: Seeded
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(console_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 5000)),
            base_url="http://console",
        ) as client,
    ):
        yield client


class Browser:
    """One logged-in officer: own cookies, and the CSRF token of their session."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        form = await self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        response = await self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token.group(1)},
        )
        if response.status_code == 303:
            page = await self.client.get("/inbox")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found
            self.csrf = found.group(1)
        return response

    async def post(self, url: str, **data: Any) -> httpx.Response:
        return await self.client.post(url, data={"csrf_token": self.csrf, **data})


@pytest.fixture
async def browser(console_settings: ConsoleSettings, seeded: Seeded) -> AsyncIterator[Any]:
    """A factory of logged-in browsers sharing one running console app."""
    app = create_app(console_settings)
    clients: list[httpx.AsyncClient] = []

    async def open_as(username: str) -> Browser:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(f"10.0.0.{len(clients) + 2}", 5000)),
            base_url="http://console",
        )
        clients.append(client)
        b = Browser(client)
        response = await b.login(username)
        assert response.status_code == 303, response.text
        return b

    async with app.router.lifespan_context(app):
        yield open_as
    for c in clients:
        await c.aclose()


def since(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
