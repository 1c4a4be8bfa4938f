"""``ketnoi notifier``."""

from __future__ import annotations

import click

__all__ = ["SERVICE", "authorize", "notifier"]

#: How the embedded stack runs this service.
SERVICE = {"port": 8082, "argv": ["notifier"]}


@click.command()
def notifier() -> None:
    """Run the notifier (notify.requests.v1 → Zalo OA API → notify.results.v1)."""
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import serve  # noqa: PLC0415
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .settings import NotifierSettings  # noqa: PLC0415

    settings = load_settings(NotifierSettings)
    configure_logging("notifier", level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), settings)


@click.command()
@click.option("--redirect-uri", required=True, help="The callback URL registered for the app.")
@click.option("--oa-id", default=None, help="The OA (else read from the callback URL).")
def authorize(redirect_uri: str, oa_id: str | None) -> None:
    """Authorise an OA (OAuth v4 + PKCE) and store its first token pair, sealed."""
    import asyncio  # noqa: PLC0415

    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .authorize import Pkce, callback_values, permission_url  # noqa: PLC0415
    from .settings import NotifierSettings  # noqa: PLC0415

    settings = load_settings(NotifierSettings)
    if not (settings.zalo_app_id and settings.zalo_app_secret and settings.database_url):
        raise click.UsageError(
            "set KETNOI_ZALO_APP_ID, KETNOI_ZALO_APP_SECRET and KETNOI_DATABASE_URL"
        )
    pkce = Pkce.new()
    click.echo("1. Open this address, logged in as an administrator of the OA:")
    click.echo(
        "   "
        + permission_url(
            oauth_url=settings.zalo_oauth_url,
            app_id=settings.zalo_app_id,
            redirect_uri=redirect_uri,
            pkce=pkce,
        )
    )
    answer = click.prompt("2. Paste the address you were sent back to (or just the code)")
    code, callback_oa, state = callback_values(answer)
    if state is not None and state != pkce.state:
        raise click.ClickException("the state does not match: start again")
    oa = oa_id or callback_oa
    if not oa:
        raise click.UsageError("the OA id is unknown: give --oa-id")

    async def exchange() -> None:
        import asyncpg  # noqa: PLC0415

        from .tokens import TokenStore  # noqa: PLC0415
        from .zalo import ZaloClient  # noqa: PLC0415

        assert settings.zalo_app_id is not None
        assert settings.zalo_app_secret is not None
        client = ZaloClient(
            openapi_url=settings.zalo_openapi_url, oauth_url=settings.zalo_oauth_url
        )
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            pair = await client.exchange_code(
                app_id=settings.zalo_app_id,
                secret_key=settings.zalo_app_secret.get_secret_value(),
                code=code,
                code_verifier=pkce.verifier,
            )
            protector = settings.identity_protector()
            await TokenStore(
                pool=pool,
                client=client,
                protector=protector,
                app_id=settings.zalo_app_id,
                app_secret=settings.zalo_app_secret.get_secret_value(),
            ).save(oa, pair)
        finally:
            await pool.close()
            await client.aclose()

    asyncio.run(exchange())
    click.echo(f"3. Done: OA {oa} is authorised; its tokens are stored sealed.")
