"""The ``ketnoi`` command. Each service package adds its subcommands through the
``ketnoi.cli`` entry-point group, so this package does not depend on the services.
"""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from .settings import CommonSettings, load_settings

__all__ = ["docs", "main", "migrate", "topics", "zalo"]


class _PluginGroup(click.Group):
    """Loads subcommands from an entry-point group (``ketnoi.cli`` by default), lazily."""

    plugin_group = "ketnoi.cli"

    def _eps(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=self.plugin_group)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._eps()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        ep = self._eps().get(cmd_name)
        return ep.load() if ep is not None else None


@click.group(cls=_PluginGroup)
def main() -> None:
    """Ketnoi: citizen-to-police tip line on Zalo Official Accounts."""


class _ZaloGroup(_PluginGroup):
    plugin_group = "ketnoi.cli.zalo"


@click.group(cls=_ZaloGroup)
def zalo() -> None:
    """Tools that act like Zalo or talk to it (signatures, webhooks, OA authorisation)."""


def _database_url(settings: CommonSettings) -> str:
    if not settings.database_url:
        raise click.UsageError("KETNOI_DATABASE_URL is not set")
    return settings.database_url


@click.command()
def migrate() -> None:
    """Apply database migrations (one-shot; safe to run again)."""
    from .db import apply_migrations  # noqa: PLC0415

    settings = load_settings(CommonSettings)
    applied = apply_migrations(_database_url(settings))
    click.echo(
        f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
    )


@click.command()
@click.option("--replication", default=1, show_default=True, help="Replication factor.")
def topics(replication: int) -> None:
    """Create every topic of the registry that does not exist yet."""
    from .contracts import all_topics  # noqa: PLC0415
    from .messaging import ensure_topics  # noqa: PLC0415

    settings = load_settings(CommonSettings)
    created = asyncio.run(
        ensure_topics(settings.kafka_bootstrap, all_topics(), replication=replication)
    )
    click.echo(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/asyncapi.json"))
@click.option(
    "--readme",
    type=click.Path(path_type=Path),
    default=Path("README.md"),
    help="README whose topics and settings tables are regenerated.",
)
def docs(out: Path, readme: Path) -> None:
    """Generate docs/asyncapi.json (from the FastStream apps) and the README's tables."""
    from .asyncapi import build_asyncapi  # noqa: PLC0415
    from .doctables import update_readme  # noqa: PLC0415

    document = build_asyncapi()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Keys sorted: FastStream's channel order changes from one run to the next.
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    click.echo(f"wrote {out}", err=True)
    if readme.exists():
        current = update_readme(readme)
        click.echo(f"{readme} tables {'already current' if current else 'updated'}", err=True)
