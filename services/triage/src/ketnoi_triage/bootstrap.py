"""Data the embedded stack loads after the migrations: the unit directory."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from .directory import default_units_path, load_units_file, upsert_units

__all__ = ["bootstrap", "default_overrides_path", "load_units"]


def default_overrides_path() -> Path:
    return Path(__file__).resolve().parent / "rules" / "demo_oas.yaml"


async def load_units(
    database_url: str, path: Path | None = None, *, overrides: Path | None = None
) -> int:
    units = load_units_file(
        path or default_units_path(), overrides=overrides or default_overrides_path()
    )
    conn = await asyncpg.connect(database_url)
    try:
        return await upsert_units(conn, units)
    finally:
        await conn.close()


async def bootstrap(database_url: str) -> str | None:
    """Load the packaged directory when the database has no units yet."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM units"):
            return None
    finally:
        await conn.close()
    if not default_units_path().exists():
        return None
    count = await load_units(database_url)
    return f"{count} police units loaded"
