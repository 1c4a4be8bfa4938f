"""Harness for the sandbox tests: an in-process app on an injectable clock, and helpers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ketnoi_sandbox import ManualClock, SandboxSettings, create_sandbox_app, pkce_challenge
from ketnoi_sandbox.citizen import WebhookTarget

APP_ID = "1234567890123456789"
APP_SECRET = "TESTAPPSECRETKEY0001"
OA = "4123456789012345678"
OA2 = "4123456789012345699"
USER = "8123456789012345678"
USER2 = "8123456789012345679"
ANON = "6123456789012345678"
#: 2026-01-02 12:00:00 Vietnam time (05:00 UTC): daytime, so broadcasts are allowed.
NOON = 1_767_330_000.0
DAY = 86_400.0
OA_SECRET = "TESTOASECRETKEY0001"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # 43 characters
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(64)
PDF = b"%PDF-1.7\n" + bytes(64)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "zalo" / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "api" / name).read_text(encoding="utf-8"))


@dataclass
class Harness:
    client: httpx.AsyncClient
    clock: ManualClock
    settings: SandboxSettings
    #: The webhooks the simulated citizen delivered (with ``make_sandbox(phone=True)``).
    webhooks: list[httpx.Request] = field(default_factory=list)

    async def tokens(self, oa: str = OA) -> dict[str, str]:
        r = await self.client.post("/sandbox/tokens", json={"oa_id": oa})
        assert r.status_code == 200, r.text
        return r.json()

    async def token(self, oa: str = OA) -> str:
        return (await self.tokens(oa))["access_token"]

    async def interact(
        self, user: str = USER, *, oa: str = OA, at_s: float | None = None, **kw: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"oa_id": oa, "user_id": user, **kw}
        if at_s is not None:
            body["at"] = int(at_s * 1000)
        r = await self.client.post("/sandbox/interactions", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    async def cs(
        self,
        token: str,
        message: dict[str, Any],
        user: str = USER,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.client.post(
            "/v3.0/oa/message/cs",
            json={"recipient": {"user_id": user}, "message": message},
            headers={"access_token": token, **(headers or {})},
        )

    async def text(self, token: str, text: str = "Xin chào", user: str = USER) -> dict[str, Any]:
        r = await self.cs(token, {"text": text}, user=user)
        assert r.status_code == 200
        return r.json()

    async def upload(
        self,
        token: str,
        kind: str,
        data: bytes,
        filename: str = "x.png",
        content_type: str = "image/png",
    ) -> dict[str, Any]:
        r = await self.client.post(
            f"/v2.0/oa/upload/{kind}",
            files={"file": (filename, data, content_type)},
            headers={"access_token": token},
        )
        assert r.status_code == 200
        return r.json()

    async def sent(self, **params: str) -> list[dict[str, Any]]:
        r = await self.client.get("/sandbox/messages", params=params)
        assert r.status_code == 200
        return r.json()

    async def fault(self, **spec: Any) -> dict[str, Any]:
        r = await self.client.post("/sandbox/faults", json=spec)
        assert r.status_code == 200, r.text
        return r.json()

    async def code(self, oa: str = OA, verifier: str = VERIFIER) -> str:
        r = await self.client.post(
            "/sandbox/oauth/codes", json={"oa_id": oa, "code_challenge": pkce_challenge(verifier)}
        )
        assert r.status_code == 200, r.text
        return r.json()["code"]

    async def oauth(self, form: dict[str, str], secret: str | None = APP_SECRET) -> httpx.Response:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if secret is not None:
            headers["secret_key"] = secret
        return await self.client.post("/v4/oa/access_token", data=form, headers=headers)


MakeHarness = Callable[..., AbstractAsyncContextManager[Harness]]


@pytest.fixture
def make_sandbox() -> MakeHarness:
    """``async with make_sandbox(**settings_overrides) as sb:`` — a fresh sandbox at NOON.

    ``phone=True`` mounts the simulated citizen, whose webhooks land in ``sb.webhooks``
    (answered ``webhook_status``, 200 by default).
    """

    @asynccontextmanager
    async def make(
        *, phone: bool = False, webhook_status: int = 200, **overrides: Any
    ) -> AsyncIterator[Harness]:
        clock = ManualClock(NOON)
        oas = overrides.pop("oas", {OA: "Công an phường Bến Thành", OA2: "Công an phường Sài Gòn"})
        settings = SandboxSettings(clock=clock, oas=oas, **overrides)
        webhooks: list[httpx.Request] = []

        def ingest(request: httpx.Request) -> httpx.Response:
            webhooks.append(request)
            return httpx.Response(webhook_status)

        target = WebhookTarget(
            url="http://ingest/zalo/webhook",
            oa_secret=OA_SECRET,
            retry_scale=0.0,
            transport=httpx.MockTransport(ingest),
        )
        app = create_sandbox_app(settings, webhook=target if phone else None)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            yield Harness(client, clock, settings, webhooks)

    return make


@pytest.fixture
async def sb(make_sandbox: MakeHarness) -> AsyncIterator[Harness]:
    async with make_sandbox() as harness:
        yield harness
