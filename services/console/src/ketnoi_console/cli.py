"""``ketnoi console`` (the web app) and ``ketnoi users`` (accounts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

__all__ = ["SERVICE", "console", "users"]

#: How the embedded stack runs this service.
SERVICE = {"port": 8083, "argv": ["console"]}

T = TypeVar("T")


@click.command()
def console() -> None:
    """Run the officers' web console."""
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import serve  # noqa: PLC0415
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .settings import ConsoleSettings  # noqa: PLC0415

    settings = load_settings(ConsoleSettings)
    configure_logging("console", level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), settings)


def _with_db(job: Callable[[Any], Awaitable[T]]) -> T:
    import asyncpg  # noqa: PLC0415

    from ketnoi_shared.settings import CommonSettings, load_settings  # noqa: PLC0415

    settings = load_settings(CommonSettings)
    if not settings.database_url:
        raise click.UsageError(
            "set KETNOI_DATABASE_URL (the embedded stack writes it to .ketnoi/endpoints.json)"
        )

    async def run() -> T:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await job(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


@click.group()
def users() -> None:
    """Console accounts: add, disable, reset a password, list."""


@users.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Name shown in the console.")
@click.option(
    "--role",
    type=click.Choice(["officer", "lead", "supervisor", "admin"]),
    default="officer",
    show_default=True,
)
@click.option("--unit", "unit_id", required=True, help="Unit id (see `ketnoi units list`).")
@click.option("--password", default=None, help="Else one is generated and printed once.")
def add(username: str, display_name: str, role: str, unit_id: str, password: str | None) -> None:
    """Create an account."""
    from .access import Role  # noqa: PLC0415
    from .auth import AccountError, add_account, generate_password  # noqa: PLC0415

    secret = password or generate_password()
    try:
        _with_db(
            lambda conn: add_account(
                conn,
                username=username,
                display_name=display_name,
                role=Role(role),
                unit_id=unit_id,
                password=secret,
            )
        )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"account {username} created ({role}, {unit_id})")
    if password is None:
        click.echo(f"password: {secret}")


@users.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Disable an account and end its sessions."""
    from .auth import AccountError, disable_account  # noqa: PLC0415

    try:
        _with_db(lambda conn: disable_account(conn, username))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"account {username} disabled")


@users.command("reset")
@click.argument("username")
@click.option("--password", default=None, help="Else one is generated and printed once.")
def reset(username: str, password: str | None) -> None:
    """Set a new password (re-enables the account, ends its sessions)."""
    from .auth import AccountError, generate_password, reset_password  # noqa: PLC0415

    secret = password or generate_password()
    try:
        _with_db(lambda conn: reset_password(conn, username, secret))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password of {username} reset")
    if password is None:
        click.echo(f"password: {secret}")


@users.command("list")
def list_() -> None:
    """List accounts."""

    async def fetch(conn: Any) -> list[Any]:
        rows: list[Any] = await conn.fetch(
            "SELECT username, display_name, role, unit_id, disabled FROM accounts ORDER BY id"
        )
        return rows

    for r in _with_db(fetch):
        flag = " (disabled)" if r["disabled"] else ""
        click.echo(
            f"{r['username']:<24} {r['role']:<11} {r['unit_id']:<32} {r['display_name']}{flag}"
        )
