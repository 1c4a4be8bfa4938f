"""Accounts, passwords (argon2id), login throttling, server-side sessions and CSRF tokens.

The session cookie carries a random token signed with itsdangerous; the database keeps only
its SHA-256, the account and a per-session CSRF token. Disabling an account or resetting its
password ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

from .access import Role, Viewer, units_visible_to

__all__ = [
    "AccountError",
    "LoginResult",
    "Sessions",
    "add_account",
    "audit",
    "disable_account",
    "generate_password",
    "reset_password",
]

_HASHER = PasswordHasher()
# A hash to verify against when the username is unknown, so timing does not tell.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 12


class AccountError(Exception):
    """A request about accounts that cannot be done (unknown unit, weak password, ...)."""


def generate_password() -> str:
    return secrets.token_urlsafe(12)


async def add_account(
    conn: asyncpg.Connection,
    *,
    username: str,
    display_name: str,
    role: Role,
    unit_id: str,
    password: str,
) -> int:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    if not await conn.fetchval("SELECT 1 FROM units WHERE id = $1", unit_id):
        raise AccountError(f"unknown unit {unit_id!r}")
    try:
        account_id: int = await conn.fetchval(
            """INSERT INTO accounts (username, display_name, role, unit_id, password_hash)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            username.strip().lower(),
            display_name,
            role.value,
            unit_id,
            _HASHER.hash(password),
        )
    except asyncpg.UniqueViolationError as exc:
        raise AccountError(f"account {username!r} already exists") from exc
    await audit(conn, account_id=None, username=username, action="account.add", unit_id=unit_id)
    return account_id


async def disable_account(conn: asyncpg.Connection, username: str) -> None:
    async with conn.transaction():
        account_id = await conn.fetchval(
            "UPDATE accounts SET disabled = true WHERE username = $1 RETURNING id",
            username.strip().lower(),
        )
        if account_id is None:
            raise AccountError(f"no account {username!r}")
        await conn.execute("DELETE FROM console_sessions WHERE account_id = $1", account_id)
        await audit(conn, account_id=None, username=username, action="account.disable")


async def reset_password(conn: asyncpg.Connection, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    async with conn.transaction():
        account_id = await conn.fetchval(
            """UPDATE accounts SET password_hash = $2, password_changed_at = now(),
                   disabled = false
               WHERE username = $1 RETURNING id""",
            username.strip().lower(),
            _HASHER.hash(password),
        )
        if account_id is None:
            raise AccountError(f"no account {username!r}")
        await conn.execute("DELETE FROM console_sessions WHERE account_id = $1", account_id)
        await audit(conn, account_id=None, username=username, action="account.reset")


async def audit(
    conn: asyncpg.Connection,
    *,
    account_id: int | None,
    username: str | None,
    action: str,
    case_id: str | None = None,
    unit_id: str | None = None,
    reason: str | None = None,
    detail: str = "{}",
    client: str | None = None,
) -> None:
    """Append one audit record (the table refuses updates and deletes)."""
    await conn.execute(
        """INSERT INTO audit_log (account_id, username, action, case_id, unit_id, reason,
                                  detail, client)
           VALUES ($1, $2, $3, $4::uuid, $5, $6, $7::jsonb, $8)""",
        account_id,
        username,
        action,
        case_id,
        unit_id,
        reason,
        detail,
        client,
    )


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str | None = None
    throttled: bool = False


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Logins and sessions against the accounts tables (run as the service role: account
    tables carry no case data)."""

    COOKIE = "ketnoi_session"

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        secret: str,
        hours: float,
        max_failures: int,
        window_s: int,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the console session secret must have at least 32 characters")
        self.pool = pool
        self.signer = URLSafeSerializer(secret, salt="ketnoi-console-session")
        self.lifetime = timedelta(hours=hours)
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_s)

    async def login(self, username: str, password: str, *, client: str) -> LoginResult:
        username = username.strip().lower()[:100]
        keys = [f"user:{username}", f"client:{client}"]
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            failures = await conn.fetch(
                """SELECT key, count(*) AS n FROM login_failures
                   WHERE key = ANY($1::text[]) AND failed_at > $2 GROUP BY key""",
                keys,
                now - self.window,
            )
            if any(r["n"] >= self.max_failures for r in failures):
                await audit(
                    conn,
                    account_id=None,
                    username=username,
                    action="login.throttled",
                    client=client,
                )
                return LoginResult(throttled=True)
            account = await conn.fetchrow(
                "SELECT id, password_hash, disabled FROM accounts WHERE username = $1", username
            )
            ok = False
            try:
                ok = _HASHER.verify(account["password_hash"] if account else _DUMMY_HASH, password)
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or account is None or account["disabled"]:
                await conn.executemany(
                    "INSERT INTO login_failures (key) VALUES ($1)", [(k,) for k in keys]
                )
                await audit(
                    conn,
                    account_id=account["id"] if account else None,
                    username=username,
                    action="login.failed",
                    client=client,
                )
                return LoginResult()
            if _HASHER.check_needs_rehash(account["password_hash"]):
                await conn.execute(
                    "UPDATE accounts SET password_hash = $2 WHERE id = $1",
                    account["id"],
                    _HASHER.hash(password),
                )
            await conn.execute(
                "DELETE FROM login_failures WHERE key = $1 OR failed_at < $2",
                keys[0],
                now - self.window,
            )
            token = secrets.token_urlsafe(32)
            await conn.execute(
                """INSERT INTO console_sessions (id, account_id, csrf_token, expires_at)
                   VALUES ($1, $2, $3, $4)""",
                _token_id(token),
                account["id"],
                secrets.token_urlsafe(32),
                now + self.lifetime,
            )
            await audit(
                conn, account_id=account["id"], username=username, action="login", client=client
            )
        return LoginResult(token=self.signer.dumps(token))

    async def viewer(self, cookie: str | None) -> Viewer | None:
        """The logged-in account of a session cookie, or None."""
        if not cookie:
            return None
        try:
            token = self.signer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(token, str):
            return None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT a.id, a.username, a.display_name, a.role, a.unit_id, u.name AS unit_name,
                          s.csrf_token
                   FROM console_sessions s JOIN accounts a ON a.id = s.account_id
                   JOIN units u ON u.id = a.unit_id
                   WHERE s.id = $1 AND s.expires_at > now() AND NOT a.disabled""",
                _token_id(token),
            )
            if row is None:
                return None
            role = Role(row["role"])
            units = await units_visible_to(conn, role=role, unit_id=row["unit_id"])
        return Viewer(
            account_id=row["id"],
            username=row["username"],
            display_name=row["display_name"],
            role=role,
            unit_id=row["unit_id"],
            unit_name=row["unit_name"],
            units=units,
            csrf_token=row["csrf_token"],
        )

    async def logout(self, cookie: str | None) -> None:
        if not cookie:
            return
        try:
            token = self.signer.loads(cookie)
        except BadSignature:
            return
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM console_sessions WHERE id = $1", _token_id(str(token)))

    @staticmethod
    def csrf_ok(viewer: Viewer, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(viewer.csrf_token, submitted or "")
