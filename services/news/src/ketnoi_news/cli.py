"""``ketnoi news``: run the service, ask the knowledge base, evaluate it, poll the feeds once,
queue a broadcast."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["SERVICE", "news"]

#: How the embedded stack runs this service.
SERVICE = {"port": 8084, "argv": ["news", "serve"]}


@click.group()
def news() -> None:
    """News, "Công vụ" answers, welcome messages and alerts to followers."""


@news.command()
def serve() -> None:
    """Run the news service (consumers, feed poller, broadcast runner, /feeds/)."""
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import serve as serve_app  # noqa: PLC0415
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .settings import NewsSettings  # noqa: PLC0415

    settings = load_settings(NewsSettings)
    configure_logging("news", level=settings.log_level, fmt=settings.log_format)
    serve_app(create_app(settings), settings)


def _settings() -> Any:
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .settings import NewsSettings  # noqa: PLC0415

    return load_settings(NewsSettings)


@news.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def ask(question: str, as_json: bool) -> None:
    """Answer QUESTION from the knowledge base, as a citizen would receive it."""
    from .app import build_service  # noqa: PLC0415

    service = build_service(_settings())
    match, text = service.answer(question)
    candidates = [
        {"entry_id": c.entry_id, "title": c.title, "score": c.score} for c in match.candidates
    ]
    if as_json:
        click.echo(
            json.dumps(
                {"confident": match.confident, "candidates": candidates, "answer": text},
                ensure_ascii=False,
            )
        )
        return
    click.echo(text)
    click.echo("")
    verdict = "tự động trả lời" if match.confident else "chuyển cán bộ (không đủ chắc chắn)"
    click.echo(f"-- {verdict}; ứng viên:")
    for c in candidates:
        click.echo(f"   {c['score']:7.3f}  {c['entry_id']}  {c['title']}")


@news.command("eval")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labelled questions (JSON lines; default: services/news/eval/questions.jsonl).",
)
@click.option("--errors", is_flag=True, help="Also list the questions answered wrongly.")
def evaluate_command(path: Path | None, errors: bool) -> None:
    """Top-1 accuracy and fallback rate of the knowledge base on the labelled questions."""
    from .app import build_service  # noqa: PLC0415
    from .evaluate import evaluate, load_questions  # noqa: PLC0415

    service = build_service(_settings())
    report = evaluate(service.retriever, load_questions(path))
    click.echo(json.dumps(report.summary(), ensure_ascii=False))
    if errors:
        for e in report.errors:
            click.echo(json.dumps(e, ensure_ascii=False))
    if report.top1_accuracy < 0.85:
        sys.exit(1)


@news.command()
@click.option("--all", "force", is_flag=True, help="Poll every source, due or not.")
def fetch(force: bool) -> None:
    """Run one polling round of the configured sources and print what was new."""
    settings = _settings()
    if not settings.database_url:
        raise click.UsageError("KETNOI_DATABASE_URL is not set")

    async def run() -> None:
        import httpx  # noqa: PLC0415
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.routing import Mount  # noqa: PLC0415
        from starlette.staticfiles import StaticFiles  # noqa: PLC0415

        from ketnoi_shared.db import create_pool  # noqa: PLC0415

        from .feeds import FeedPoller, default_feeds_dir, load_sources  # noqa: PLC0415

        port = settings.http_port or 8084
        self_url = f"http://{settings.http_host}:{port}"
        # The sample feeds are served in-process, so this works without the service running.
        feeds = Starlette(routes=[Mount("/feeds", StaticFiles(directory=default_feeds_dir()))])
        pool = await create_pool(settings.database_url, max_size=4)
        async with httpx.AsyncClient(
            mounts={self_url: httpx.ASGITransport(app=feeds)},
            timeout=settings.news_fetch_timeout_s,
            follow_redirects=True,
        ) as http:
            try:
                poller = FeedPoller(
                    pool,
                    http,
                    load_sources(settings.news_sources, self_url=self_url),
                    interval_s=settings.news_poll_interval_s,
                    timeout_s=settings.news_fetch_timeout_s,
                    backoff_max_s=settings.news_backoff_max_s,
                )
                result = await poller.poll_once(force=force)
            finally:
                await pool.close()
        for source, status in sorted(result.status.items()):
            click.echo(f"source {source}: {status}")
        for item in result.new:
            tags = ",".join(item.tags) or "-"
            click.echo(f"NEW [{item.source_id}] [{tags}] {item.title}\n    {item.url}")
        click.echo(f"{len(result.new)} new item(s), {result.duplicates} duplicate(s) skipped")

    asyncio.run(run())


@news.command()
@click.option("--oa", "oa_ids", multiple=True, required=True, help="OA id (repeatable).")
@click.option("--item", "item_id", default=None, help="A stored news item to broadcast.")
@click.option("--title", default=None, help="Title of a written warning (≤ 150 characters).")
@click.option("--text", "body", default=None, help="Body of a written warning.")
@click.option("--author", default="Công an", show_default=True)
@click.option("--by", "requested_by", required=True, help="officer:<account id> asking for it.")
@click.option("--send", is_flag=True, help="Process due broadcasts now instead of waiting.")
def broadcast(  # noqa: PLR0917 - click passes every option positionally
    oa_ids: tuple[str, ...],
    item_id: str | None,
    title: str | None,
    body: str | None,
    author: str,
    requested_by: str,
    send: bool,
) -> None:
    """Queue an alert to the followers of the chosen OAs (article + broadcast)."""
    if bool(item_id) == bool(title and body):
        raise click.UsageError("give either --item, or --title and --text")
    settings = _settings()
    if not settings.database_url:
        raise click.UsageError("KETNOI_DATABASE_URL is not set")

    async def run() -> None:
        from ketnoi_shared.db import create_pool  # noqa: PLC0415

        from .app import _article_api, _State, verified_oas  # noqa: PLC0415
        from .broadcast import Broadcaster  # noqa: PLC0415

        state = _State(settings)
        state.pool = await create_pool(settings.database_url, max_size=4)
        try:
            built = _article_api(settings, state)
            if built is None:
                raise click.ClickException("Zalo is not configured (KETNOI_ZALO_APP_ID/SECRET)")
            api, openapi_url = built
            broadcaster = Broadcaster(
                state.pool,
                api,
                verified_oas=verified_oas(settings, openapi_url=openapi_url),
                monthly_cap=settings.news_broadcast_monthly_cap,
                target=json.loads(settings.news_broadcast_target),
                cover_url=settings.news_article_cover_url,
            )
            if item_id:
                bid = await broadcaster.create_from_item(
                    item_id=item_id, oa_ids=oa_ids, requested_by=requested_by
                )
            else:
                assert title is not None
                assert body is not None
                bid = await broadcaster.create(
                    title=title,
                    body=body,
                    author=author,
                    oa_ids=oa_ids,
                    requested_by=requested_by,
                )
            click.echo(f"broadcast {bid} queued for {len(oa_ids)} OA(s)")
            if send:
                for outcome in await broadcaster.run_due():
                    when = f" until {outcome.not_before:%Y-%m-%d %H:%M} UTC" * bool(
                        outcome.not_before
                    )
                    click.echo(f"  {outcome.oa_id}: {outcome.status} {outcome.reason or ''}{when}")
        finally:
            await state.pool.close()
            if state.zalo is not None:
                await state.zalo.aclose()

    asyncio.run(run())
