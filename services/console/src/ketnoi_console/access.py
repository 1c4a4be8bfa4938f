"""Who is looking, and the only way the console touches case data: a transaction running as
the ``ketnoi_console`` role with the viewer's units set for that transaction alone.

PostgreSQL enforces need-to-know (row-level security, migration 0008): the role owns nothing,
has no BYPASSRLS, and sees no case rows unless ``ketnoi.units`` names the case's owner or one of
its info-copy units. The setting is transaction-local (``set_config(..., true)``), so a pooled
connection handed to the next request carries nothing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

import asyncpg

__all__ = ["Role", "Viewer", "scoped", "units_visible_to"]

CONSOLE_ROLE = "ketnoi_console"


class Role(StrEnum):
    OFFICER = "officer"
    LEAD = "lead"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


ROLE_NAMES = {
    Role.OFFICER: "Cán bộ",
    Role.LEAD: "Lãnh đạo đơn vị",
    Role.SUPERVISOR: "Giám sát cấp tỉnh",
    Role.ADMIN: "Quản trị hệ thống",
}


@dataclass(frozen=True, slots=True)
class Viewer:
    account_id: int
    username: str
    display_name: str
    role: Role
    unit_id: str
    unit_name: str
    units: tuple[str, ...]
    csrf_token: str = ""

    @property
    def can_reveal(self) -> bool:
        return self.role is Role.SUPERVISOR

    @property
    def can_read_audit(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN)

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]


async def units_visible_to(
    conn: asyncpg.Connection, *, role: Role, unit_id: str
) -> tuple[str, ...]:
    """Officers and leads see their own unit; a province supervisor sees every unit under the
    province (any depth); administrators manage accounts and see no cases."""
    if role is Role.ADMIN:
        return ()
    if role is not Role.SUPERVISOR:
        return (unit_id,)
    rows = await conn.fetch(
        """WITH RECURSIVE below AS (
               SELECT id FROM units WHERE id = $1
               UNION SELECT u.id FROM units u JOIN below b ON u.parent_id = b.id)
           SELECT id FROM below ORDER BY id""",
        unit_id,
    )
    return tuple(r["id"] for r in rows)


@asynccontextmanager
async def scoped(pool: asyncpg.Pool, units: tuple[str, ...]) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction that sees exactly the cases of ``units``."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {CONSOLE_ROLE}")
        await conn.execute("SELECT set_config('ketnoi.units', $1, true)", ",".join(units))
        yield conn
