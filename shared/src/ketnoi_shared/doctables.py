"""Markdown tables for the README, generated from the code so they stay true.

``ketnoi docs`` rewrites the blocks between ``<!-- name:start -->`` and ``<!-- name:end -->``;
a test fails when the README is out of date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from .contracts import all_topics
from .settings import ENV_PREFIX, CommonSettings

__all__ = ["render_readme_blocks", "settings_table", "topics_table", "update_readme"]


def topics_table() -> str:
    rows = ["| topic | partitions | key | value | retention | what |", "|---|---|---|---|---|---|"]
    for t in all_topics():
        model = t.value_model.__name__ if t.value_model else "original bytes + `x-dlq-*` headers"
        days = t.retention_ms // 86_400_000
        rows.append(
            f"| `{t.name}` | {t.partitions} | {t.key} | {model} | {days} d | {t.description} |"
        )
    return "\n".join(rows)


def _settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    found: list[tuple[str, type[BaseSettings]]] = [("all services", CommonSettings)]
    for ep in sorted(entry_points(group="ketnoi.settings"), key=lambda e: e.name):
        found.append((ep.name, ep.load()))
    return found


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or value in ({}, []):
        return "—"
    return f"`{value}`"


def settings_table() -> str:
    rows = ["| variable | used by | default | meaning |", "|---|---|---|---|"]
    seen: set[str] = set()
    for owner, cls in _settings_classes():
        for name, field in cls.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {owner} | {_default(field)} | {desc} |")
    return "\n".join(rows)


def render_readme_blocks() -> dict[str, str]:
    return {"topics": topics_table(), "settings": settings_table()}


def _replacer(block: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return match.group(1) + block + "\n" + match.group(2)

    return replace


def update_readme(path: Path, *, check: bool = False) -> bool:
    """Rewrite the generated blocks of ``path``; returns True when it was already current."""
    text = path.read_text()
    new = text
    for name, block in render_readme_blocks().items():
        pattern = re.compile(
            rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", flags=re.DOTALL
        )
        if not pattern.search(new):
            raise ValueError(f"{path} has no {name} block")
        new = pattern.sub(_replacer(block), new)
    if new != text and not check:
        path.write_text(new)
    return new == text
