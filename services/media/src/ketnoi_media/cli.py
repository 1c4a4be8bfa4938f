"""``ketnoi media``."""

from __future__ import annotations

import click

__all__ = ["SERVICE", "media"]

#: How the embedded stack runs this service.
SERVICE = {"port": 8085, "argv": ["media"]}


@click.command()
def media() -> None:
    """Run the media worker (zalo.events.v1 → attachments fetched, sealed, stripped)."""
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import serve  # noqa: PLC0415
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .settings import MediaSettings  # noqa: PLC0415

    settings = load_settings(MediaSettings)
    configure_logging("media", level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), settings)
