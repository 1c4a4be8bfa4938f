"""``ketnoi sandbox``: the local Zalo (OA API, OAuth v4 and a simulated citizen's phone)."""

from __future__ import annotations

import json

import click
from pydantic import Field, SecretStr

from ketnoi_shared.settings import CommonSettings, load_settings

__all__ = ["SERVICE", "SandboxServeSettings", "sandbox"]

#: How the embedded stack runs the sandbox (when no real Zalo credentials are configured).
SERVICE = {"port": 8090, "argv": ["sandbox"], "only": "sandbox"}


class SandboxServeSettings(CommonSettings):
    sandbox_webhook_url: str | None = Field(
        default=None,
        description="Where the sandbox's simulated citizens send webhooks "
        "(ingest's /zalo/webhook). Unset: no citizen simulator.",
    )
    sandbox_url: str = Field(
        default="http://127.0.0.1:8090",
        description="The running sandbox (for scripts). When set, also the base of the "
        "attachment links the sandbox puts in webhooks (else the address a request came to).",
    )
    sandbox_retry_scale: float = Field(
        default=0.01, description="Scale of Zalo's webhook retry delays in the sandbox."
    )
    sandbox_media_url_lifetime_s: int = Field(
        default=6 * 3600,
        gt=0,
        description="Seconds a sandbox attachment link (photo, video, file sent by a simulated "
        "citizen) stays valid; expired or tampered links get 403 like Zalo's CDN.",
    )
    sandbox_media_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Bytes of simulated citizens' media the sandbox keeps in memory "
        "(oldest dropped beyond).",
    )
    zalo_oa_secret: SecretStr | None = None
    zalo_app_secret: SecretStr | None = None


@click.group(invoke_without_command=True)
@click.pass_context
def sandbox(ctx: click.Context) -> None:
    """Serve the Zalo sandbox (strict fake of openapi.zalo.me and oauth.zaloapp.com, plus a
    simulated citizen's phone); subcommands talk to a running one."""
    if ctx.invoked_subcommand is not None:
        return
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import ReadinessChecks, add_probes, serve  # noqa: PLC0415

    from .api import create_sandbox_app  # noqa: PLC0415
    from .citizen import WebhookTarget  # noqa: PLC0415
    from .settings import SandboxSettings  # noqa: PLC0415

    settings = load_settings(SandboxServeSettings)
    configure_logging("sandbox", level=settings.log_level, fmt=settings.log_format)
    webhook = None
    if settings.sandbox_webhook_url and settings.zalo_oa_secret:
        webhook = WebhookTarget(
            url=settings.sandbox_webhook_url,
            oa_secret=settings.zalo_oa_secret.get_secret_value(),
            retry_scale=settings.sandbox_retry_scale,
        )
    extra: dict[str, object] = {
        "media_url_lifetime_s": settings.sandbox_media_url_lifetime_s,
        "media_max_bytes": settings.sandbox_media_max_bytes,
    }
    if "sandbox_url" in settings.model_fields_set:
        extra["public_url"] = settings.sandbox_url
    if settings.zalo_app_secret:
        extra["app_secret"] = settings.zalo_app_secret.get_secret_value()
    app = create_sandbox_app(SandboxSettings.model_validate(extra), webhook=webhook)

    add_probes(app, ReadinessChecks(), service="sandbox")  # in memory: always ready
    serve(app, settings)


@sandbox.command()
@click.argument("text", required=False)
@click.option(
    "--user",
    default="8123456789012345678",
    show_default=True,
    help="The citizen's Zalo user id (the fixtures' fake one by default).",
)
@click.option("--oa", default="4123456789012345678", show_default=True)
@click.option(
    "--photo", is_flag=True, help="Send a sample photo with GPS EXIF (TEXT is its caption)."
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Send this picture, video or document (TEXT is a picture's caption).",
)
@click.option("--location", default=None, help="Share a location: LAT,LON.")
@click.option("--follow", is_flag=True, help="Follow the OA.")
def say(
    text: str | None,
    *,
    user: str,
    oa: str,
    photo: bool,
    path: str | None,
    location: str | None,
    follow: bool,
) -> None:
    """Act as a citizen in Zalo: send TEXT (or a photo, a file, a location, a follow) to an
    OA."""
    import mimetypes  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    settings = load_settings(SandboxServeSettings)
    action: dict[str, object] = {"oa_id": oa, "user_id": user, "text": text}
    if follow:
        action["kind"] = "follow"
    elif location:
        lat, _, lon = location.partition(",")
        action.update(kind="location", latitude=float(lat), longitude=float(lon))
    elif photo:
        action["kind"] = "image"
    url = f"{settings.sandbox_url}/sandbox/citizen/send"
    if path:
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        kind = media_type.split("/")[0]
        action["kind"] = kind if kind in ("image", "video") else "file"
        fields = {k: str(v) for k, v in action.items() if v is not None}
        with Path(path).open("rb") as handle:
            files = {"file": (Path(path).name, handle, media_type)}
            response = httpx.post(url, data=fields, files=files, timeout=30)
    else:
        response = httpx.post(url, json=action, timeout=10)
    response.raise_for_status()
    click.echo(json.dumps(response.json(), ensure_ascii=False))


@sandbox.command()
@click.option("--user", default="8123456789012345678", show_default=True)
@click.option("--oa", default="4123456789012345678", show_default=True)
def inbox(user: str, oa: str) -> None:
    """What the citizen's phone received from the OA."""
    import httpx  # noqa: PLC0415

    settings = load_settings(SandboxServeSettings)
    response = httpx.get(
        f"{settings.sandbox_url}/sandbox/messages", params={"user": user, "oa": oa}, timeout=10
    )
    response.raise_for_status()
    click.echo(json.dumps(response.json(), ensure_ascii=False, indent=2))


@sandbox.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", default=None, help="The citizen's id (default: a new one).")
def scenario(file: str, user: str | None) -> None:
    """Run a scripted citizen (YAML) against the running sandbox; exit 1 if an expectation
    fails."""
    from pathlib import Path  # noqa: PLC0415

    from .scenario import ScenarioError, run_scenario  # noqa: PLC0415

    settings = load_settings(SandboxServeSettings)
    try:
        result = run_scenario(Path(file), sandbox_url=settings.sandbox_url, user=user)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in result.log:
        click.echo(line)
    for reply in result.replies:
        click.echo(f"reply: {reply.get('text')}")
