"""The police unit directory: loaded from YAML into PostgreSQL (``ketnoi units load``) and
read back by triage as an in-memory snapshot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

__all__ = ["Directory", "Unit", "default_units_path", "load_units_file", "upsert_units"]


def default_units_path() -> Path:
    return Path(__file__).resolve().parent / "data" / "units_lam_dong.yaml"


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    kind: str
    code: str | None
    name: str
    parent_id: str | None
    oa_ids: tuple[str, ...]


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def load_units_file(path: Path, *, overrides: Path | None = None) -> list[dict[str, Any]]:
    """Units from a YAML file (a list, or a mapping with a ``units`` list); ``overrides``
    (same format, partial entries by id) fill deployment details such as OA ids."""
    data = yaml.safe_load(path.read_text())
    units = data["units"] if isinstance(data, dict) else data
    if not isinstance(units, list):
        raise TypeError(f"{path}: expected a list of units")
    by_id = {u["id"]: dict(u) for u in units}
    if overrides is not None and overrides.exists():
        extra = yaml.safe_load(overrides.read_text()) or {}
        for item in extra.get("units", extra) if isinstance(extra, dict) else extra:
            by_id.setdefault(item["id"], {}).update(item)
    return list(by_id.values())


async def upsert_units(conn: asyncpg.Connection, units: list[dict[str, Any]]) -> int:
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO units (id, kind, code, name, parent_id, aliases, oa_ids,
                                  active_from, active_to, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
               ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, code = EXCLUDED.code,
                 name = EXCLUDED.name, parent_id = EXCLUDED.parent_id,
                 aliases = EXCLUDED.aliases, oa_ids = EXCLUDED.oa_ids,
                 active_from = EXCLUDED.active_from, active_to = EXCLUDED.active_to,
                 updated_at = now()""",
            [
                (
                    u["id"],
                    u["kind"],
                    None if u.get("code") is None else str(u["code"]),
                    u["name"],
                    u.get("parent"),
                    list(u.get("aliases") or []),
                    [str(o) for o in u.get("oa_ids") or []],
                    _date(u.get("active_from")),
                    _date(u.get("active_to")),
                )
                for u in units
            ],
        )
    return len(units)


@dataclass
class Directory:
    units: dict[str, Unit]
    by_code: dict[str, Unit]
    by_oa: dict[str, Unit]

    @classmethod
    async def fetch(cls, conn: asyncpg.Connection | asyncpg.Pool) -> Directory:
        rows = await conn.fetch(
            """SELECT id, kind, code, name, parent_id, oa_ids FROM units
               WHERE active_to IS NULL OR active_to > current_date"""
        )
        units = {
            r["id"]: Unit(
                r["id"], r["kind"], r["code"], r["name"], r["parent_id"], tuple(r["oa_ids"])
            )
            for r in rows
        }
        by_code = {u.code: u for u in units.values() if u.code and u.kind == "commune"}
        by_oa = {oa: u for u in units.values() for oa in u.oa_ids}
        return cls(units=units, by_code=by_code, by_oa=by_oa)

    def name(self, unit_id: str | None) -> str:
        unit = self.units.get(unit_id or "")
        return unit.name if unit else "Công an"
