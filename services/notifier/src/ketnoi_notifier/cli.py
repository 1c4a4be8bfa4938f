"""``ketnoi notifier``."""

from __future__ import annotations

import click

__all__ = ["SERVICE", "notifier"]

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
