"""``ketnoi ingest`` and ``ketnoi zalo sign|send-webhook``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ketnoi_shared.settings import load_settings

__all__ = ["SERVICE", "ingest", "send_webhook_cmd", "sign"]

#: How the embedded stack runs this service.
SERVICE = {"port": 8080, "argv": ["ingest"]}


@click.command()
def ingest() -> None:
    """Run the webhook receiver (POST /zalo/webhook)."""
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import serve  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .settings import IngestSettings  # noqa: PLC0415

    settings = load_settings(IngestSettings)
    configure_logging("ingest", level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), settings)


def _secret(secret: str | None) -> str:
    from .settings import IngestSettings  # noqa: PLC0415

    if secret:
        return secret
    settings = load_settings(IngestSettings)
    if settings.zalo_oa_secret is None:
        raise click.UsageError("give --secret or set KETNOI_ZALO_OA_SECRET")
    return settings.zalo_oa_secret.get_secret_value()


@click.command()
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--secret", envvar="KETNOI_ZALO_OA_SECRET", help="OA secret key.")
def sign(file: click.utils.LazyFile, secret: str | None) -> None:
    """Print the X-ZEvent-Signature header for the body in FILE (raw bytes, as sent)."""
    from .zalo_tools import sign_body  # noqa: PLC0415

    raw = file.read()
    click.echo(f"X-ZEvent-Signature: {sign_body(raw, secret=_secret(secret))}")


@click.command("send-webhook")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default="http://127.0.0.1:8080/zalo/webhook", show_default=True)
@click.option("--secret", envvar="KETNOI_ZALO_OA_SECRET", help="OA secret key.")
@click.option(
    "--compact/--as-is",
    default=True,
    show_default=True,
    help="Re-serialise the file compactly (Zalo sends compact JSON) before signing.",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    help="Multiply Zalo's retry delays (30 s … 1 h) by this, e.g. 0.001 in tests.",
)
def send_webhook_cmd(
    file: Path, url: str, secret: str | None, compact: bool, time_scale: float
) -> None:
    """Sign FILE and POST it as Zalo would, retrying on failure with Zalo's schedule."""
    import json  # noqa: PLC0415

    from .zalo_tools import send_webhook  # noqa: PLC0415

    raw = file.read_bytes()
    if compact:
        raw = json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode()
    deliveries = asyncio.run(
        send_webhook(raw, url=url, secret=_secret(secret), time_scale=time_scale)
    )
    for d in deliveries:
        click.echo(f"attempt {d.attempt}: {d.status if d.status is not None else d.error}")
    sys.exit(0 if deliveries and deliveries[-1].status == 200 else 1)
