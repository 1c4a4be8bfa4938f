"""After ``ketnoi up``: demo accounts, so a newcomer can log in right away.

Passwords are generated once per data directory, kept in ``<data_dir>/secrets`` (owner-only)
and printed at every start of the embedded stack. A real deployment creates accounts with
``ketnoi users add`` instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg

from .access import Role
from .auth import AccountError, add_account, generate_password

__all__ = ["DEMO_ACCOUNTS", "demo_accounts"]

#: username, name, role, unit
DEMO_ACCOUNTS = (
    ("canbo.xuanhuong", "Nguyễn Văn An", Role.OFFICER, "ld-xa-xuan-huong-da-lat"),
    ("truong.xuanhuong", "Trần Thị Bình", Role.LEAD, "ld-xa-xuan-huong-da-lat"),
    ("canbo.matuy", "Lê Minh Cường", Role.OFFICER, "ld-pc-ma-tuy"),
    ("giamsat.lamdong", "Phạm Quốc Dũng", Role.SUPERVISOR, "ld-ca-tinh"),
    ("quantri", "Quản trị hệ thống", Role.ADMIN, "ld-ca-tinh"),
)


def _passwords(path: Path) -> dict[str, str]:
    if path.exists():
        known: dict[str, str] = json.loads(path.read_text())
        return known
    made = {username: generate_password() for username, *_ in DEMO_ACCOUNTS}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(made, f)
    return made


async def demo_accounts(env: dict[str, str]) -> str | None:
    """Create the demo accounts (once) and return the lines to print."""
    url, data_dir = env.get("KETNOI_DATABASE_URL"), env.get("KETNOI_DATA_DIR")
    if not url or not data_dir:
        return None
    passwords = _passwords(Path(data_dir) / "secrets" / "console_demo_accounts.json")
    conn = await asyncpg.connect(url)
    try:
        for username, name, role, unit in DEMO_ACCOUNTS:
            if await conn.fetchval("SELECT 1 FROM accounts WHERE username = $1", username):
                continue
            try:
                await add_account(
                    conn,
                    username=username,
                    display_name=name,
                    role=role,
                    unit_id=unit,
                    password=passwords[username],
                )
            except AccountError:
                continue  # the unit directory of this deployment has no such unit
    finally:
        await conn.close()
    port = env.get("KETNOI_CONSOLE_PORT", "8083")
    lines = [f"console    http://127.0.0.1:{port}/  demo accounts (username / password):"]
    for username, name, role, _unit in DEMO_ACCOUNTS:
        lines.append(f"             {username:<18} {passwords[username]:<18} {role.value}: {name}")
    return "\n".join(lines)
