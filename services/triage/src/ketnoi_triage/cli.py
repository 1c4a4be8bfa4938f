"""``ketnoi triage`` and ``ketnoi units``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import click

__all__ = ["SERVICE", "triage", "units"]

#: How the embedded stack runs this service.
SERVICE = {"port": 8081, "argv": ["triage"]}

BATCH = 1000


@click.group(invoke_without_command=True)
@click.pass_context
def triage(ctx: click.Context) -> None:
    """Run the triage consumer; subcommands classify and evaluate messages."""
    if ctx.invoked_subcommand is not None:
        return
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415
    from ketnoi_shared.service import serve  # noqa: PLC0415
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .settings import TriageSettings  # noqa: PLC0415

    settings = load_settings(TriageSettings)
    configure_logging("triage", level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), settings)


def _inputs(stream: Any) -> Iterator[tuple[Any, str]]:
    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                yield obj.get("id", number), obj["text"]
                continue
        yield number, line


@triage.command()
@click.option(
    "--province",
    default="Lâm Đồng",
    show_default=True,
    help="Province of the OA (name or official code).",
)
def classify(province: str) -> None:
    """Classify JSON lines {"id", "text"} (or plain text lines) from stdin; one JSON line out
    per input with category, subcategory, urgency, confidence, location, explanation."""
    from ketnoi_shared.settings import CommonSettings, load_settings  # noqa: PLC0415

    from .engine import Triage  # noqa: PLC0415

    settings = load_settings(CommonSettings)
    engine = Triage.load(province=province, cache_dir=settings.data_dir / "cache")
    out = sys.stdout
    batch: list[tuple[Any, str]] = []

    def flush() -> None:
        results = engine.classify_many([t for _, t in batch])
        for (id_, _), result in zip(batch, results, strict=True):
            out.write(json.dumps(result.as_json(id_), ensure_ascii=False) + "\n")
        out.flush()
        batch.clear()

    for item in _inputs(sys.stdin):
        batch.append(item)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()


@triage.command("eval")
@click.option(
    "--write",
    "write_to",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the report between the markers of this Markdown file.",
)
@click.option(
    "--examples",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    help="An extra labelled JSONL set to report on, e.g. the shared examples (repeatable).",
)
def eval_(write_to: str | None, examples: tuple[str, ...]) -> None:
    """Quality on the held-out split of the corpus (and optional extra sets)."""
    from pathlib import Path  # noqa: PLC0415

    from .classify import load_corpus  # noqa: PLC0415
    from .engine import Triage  # noqa: PLC0415
    from .evaluate import evaluate  # noqa: PLC0415

    engine = Triage.load(split="train")  # evaluated on messages it has not seen
    reports = [evaluate(engine, load_corpus(split="test"), name="Held-out split of the corpus")]
    for extra in examples:
        rows = [json.loads(line) for line in Path(extra).read_text().splitlines() if line]
        reports.append(evaluate(engine, rows, name=f"Extra set: {Path(extra).name}"))
    text = "\n".join(r.markdown() for r in reports)
    click.echo(text)
    if write_to:
        path = Path(write_to)
        doc = path.read_text()
        start, end = "<!-- eval:start -->\n", "<!-- eval:end -->"
        head, _, rest = doc.partition(start)
        _, _, tail = rest.partition(end)
        path.write_text(head + start + text + end + tail)


@click.group()
def units() -> None:
    """The police unit directory."""


@units.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
def units_load(file: str | None) -> None:
    """Load (upsert) the unit directory YAML into PostgreSQL (default: the packaged one)."""
    import asyncio  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .bootstrap import load_units  # noqa: PLC0415
    from .settings import TriageSettings  # noqa: PLC0415

    settings = load_settings(TriageSettings)
    if not settings.database_url:
        raise click.UsageError("KETNOI_DATABASE_URL is not set")
    count = asyncio.run(
        load_units(
            settings.database_url,
            Path(file) if file else None,
            overrides=settings.triage_units_overrides,
        )
    )
    click.echo(f"loaded {count} unit(s)")
