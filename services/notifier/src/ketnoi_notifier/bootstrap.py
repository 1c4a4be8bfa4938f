"""After ``ketnoi up`` started everything against the sandbox: authorise the demo OAs (OAuth v4
with PKCE, exactly as `ketnoi zalo authorize` does with Zalo) so the notifier can reply."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from ketnoi_shared.settings import load_settings

from .authorize import Pkce
from .settings import NotifierSettings
from .tokens import TokenStore
from .zalo import ZaloClient

__all__ = ["authorize_sandbox"]

DEMO_OAS = ("4123456789012345678",)


async def authorize_sandbox(env: dict[str, str]) -> str | None:
    """Store a token pair for each demo OA when the stack runs on the sandbox."""
    sandbox = env.get("KETNOI_ZALO_OAUTH_URL", "")
    if not sandbox.startswith("http://127.0.0.1"):
        return None
    settings = load_settings(
        NotifierSettings,
        **{
            k.removeprefix("KETNOI_").lower(): v
            for k, v in env.items()
            if k.startswith("KETNOI_")
            and k
            in (
                "KETNOI_DATABASE_URL",
                "KETNOI_ZALO_APP_ID",
                "KETNOI_ZALO_OAUTH_URL",
                "KETNOI_ZALO_OPENAPI_URL",
                "KETNOI_DATA_DIR",
            )
        },
    )
    assert settings.zalo_app_id is not None
    assert settings.zalo_app_secret is not None
    assert settings.database_url is not None
    protector = settings.identity_protector()
    client = ZaloClient(openapi_url=settings.zalo_openapi_url, oauth_url=settings.zalo_oauth_url)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        store = TokenStore(
            pool=pool,
            client=client,
            protector=protector,
            app_id=settings.zalo_app_id,
            app_secret=settings.zalo_app_secret.get_secret_value(),
        )
        for oa in DEMO_OAS:
            pkce = Pkce.new()
            async with httpx.AsyncClient(timeout=5) as http:
                answer: Any = (
                    await http.post(
                        f"{sandbox}/sandbox/oauth/codes",
                        json={"oa_id": oa, "code_challenge": pkce.challenge},
                    )
                ).json()
            pair = await client.exchange_code(
                app_id=settings.zalo_app_id,
                secret_key=settings.zalo_app_secret.get_secret_value(),
                code=answer["code"],
                code_verifier=pkce.verifier,
            )
            await store.save(oa, pair)
    finally:
        await pool.close()
        await client.aclose()
    return f"sandbox: {len(DEMO_OAS)} demo OA(s) authorised for the notifier"
