"""``ketnoi sandbox``: the local Zalo (OA API + OAuth v4) for demos and tests."""

from __future__ import annotations

import click

__all__ = ["sandbox"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
def sandbox(host: str, port: int) -> None:
    """Serve the Zalo sandbox (strict fake of openapi.zalo.me and oauth.zaloapp.com)."""
    import uvicorn  # noqa: PLC0415

    from .api import create_sandbox_app  # noqa: PLC0415

    uvicorn.run(create_sandbox_app(), host=host, port=port, log_level="warning", access_log=False)
