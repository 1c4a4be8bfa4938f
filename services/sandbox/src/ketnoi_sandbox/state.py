"""In-memory state of the sandbox: token pairs, codes, users, sends, uploads, articles, faults,
and the citizens' media behind signed links.

One :class:`SandboxState` per app, guarded by one re-entrant lock. Handlers take ``state.lock``
around each read-check-write sequence so that, for example, two concurrent refreshes with the
same single-use refresh token cannot both succeed (README §4.3, §6 item 5).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

from .media import MediaStore
from .settings import SandboxSettings

__all__ = [
    "VN_TZ",
    "Article",
    "AuthCode",
    "Fault",
    "FaultKind",
    "RecordedMessage",
    "SandboxState",
    "TokenPair",
    "Upload",
    "UserRecord",
    "epoch_ms",
    "vn_datetime",
]

#: Vietnam time (UTC+7, no daylight saving): dates shown by Zalo, the night ban (README §3.4).
VN_TZ: Final = timezone(timedelta(hours=7), "ICT")

FaultKind = Literal[
    "latency",
    "http_500",
    "timeout",
    "timeout_after_write",
    "token_expired",
    "not_follower",
    "outside_window",
    "rate_limited",
    "error_code",
]


def epoch_ms(t: float) -> str:
    """Epoch milliseconds as a string of 13 digits, like every Zalo timestamp (fixtures)."""
    return str(round(t * 1000))


def vn_datetime(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=VN_TZ)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat()


@dataclass
class TokenPair:
    """One access/refresh pair for one OA (README §4.2–4.4)."""

    oa_id: str
    access_token: str
    refresh_token: str
    grant: str
    issued_at: float
    access_expires_at: float
    refresh_expires_at: float
    access_revoked_at: float | None = None
    refresh_used_at: float | None = None

    def view(self, now: float) -> dict[str, Any]:
        if self.access_revoked_at is not None:
            access_state = "revoked"
        elif now >= self.access_expires_at:
            access_state = "expired"
        else:
            access_state = "active"
        if self.refresh_used_at is not None:
            refresh_state = "used"
        elif now >= self.refresh_expires_at:
            refresh_state = "expired"
        else:
            refresh_state = "active"
        return {
            "oa_id": self.oa_id,
            "grant": self.grant,
            "access_token": self.access_token,
            "access_state": access_state,
            "access_expires_at": _iso(self.access_expires_at),
            "refresh_token": self.refresh_token,
            "refresh_state": refresh_state,
            "refresh_expires_at": _iso(self.refresh_expires_at),
            "refresh_used_at": _iso(self.refresh_used_at),
            "issued_at": _iso(self.issued_at),
        }


@dataclass
class AuthCode:
    """An authorisation code: 10 minutes, single-use, bound to a PKCE challenge (README §4.1)."""

    code: str
    oa_id: str
    code_challenge: str | None
    redirect_uri: str | None
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass
class UserRecord:
    """A user as seen by one OA (user ids are OA-scoped, README §3.2)."""

    oa_id: str
    user_id: str
    seq: int
    user_id_by_app: str
    display_name: str
    avatar: str
    user_alias: str = ""
    user_external_id: str = ""
    is_sensitive: bool = False
    is_follower: bool = True
    tag_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shared_info: dict[str, str] | None = None
    #: Epoch seconds of the last interaction (README §3.4), None if never.
    last_interaction: float | None = None
    #: Anonymous senders only: the conversation their replies must name (README §3.3).
    conversation_id: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "oa_id": self.oa_id,
            "user_id": self.user_id,
            "user_id_by_app": self.user_id_by_app,
            "display_name": self.display_name,
            "is_follower": self.is_follower,
            "last_interaction": None
            if self.last_interaction is None
            else epoch_ms(self.last_interaction),
            "conversation_id": self.conversation_id,
            "tag_names": list(self.tag_names),
            "shared_info": self.shared_info,
        }


@dataclass
class RecordedMessage:
    """Something sent (by the OA through the API, or by the user through the simulator)."""

    message_id: str
    oa_id: str
    user_id: str | None
    direction: Literal["oa", "user"]
    api: str
    kind: str
    text: str | None
    attachments: list[dict[str, Any]]
    sent_at: float
    recipient: dict[str, Any]
    quote_message_id: str | None = None
    #: Seconds since the user's last interaction at send time (README §7.1 item 10).
    interaction_age_s: float | None = None
    #: Sent more than 48 h after the last interaction: billed (README §3.4).
    billed: bool | None = None
    #: The response was withheld by a ``timeout_after_write`` fault.
    response_lost: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "oa_id": self.oa_id,
            "user_id": self.user_id,
            "direction": self.direction,
            "api": self.api,
            "kind": self.kind,
            "text": self.text,
            "attachments": self.attachments,
            "quote_message_id": self.quote_message_id,
            "recipient": self.recipient,
            "sent_time": epoch_ms(self.sent_at),
            "sent_at": _iso(self.sent_at),
            "interaction_age_s": self.interaction_age_s,
            "billed": self.billed,
            "response_lost": self.response_lost,
        }


@dataclass
class Upload:
    """An uploaded image/gif (``attachment_id``) or file (``token``); expires after 7 days."""

    id: str
    kind: Literal["image", "gif", "file"]
    oa_id: str
    filename: str | None
    size: int
    media_type: str
    created_at: float


@dataclass
class Article:
    """An article: ``token`` from create, ``id`` once verified (README §5.1)."""

    token: str
    oa_id: str
    kind: str
    title: str
    status: str
    created_at: float
    body: dict[str, Any]
    article_id: str | None = None


@dataclass
class Fault:
    """An injected fault; ``remaining`` None means permanent."""

    id: str
    api: str
    kind: FaultKind
    user_id: str | None
    oa_id: str | None
    value: float | int | None
    remaining: int | None
    fired: int = 0

    def matches(self, api: str, user_id: str | None, oa_id: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.api not in {"*", api}:
            return False
        if self.user_id is not None and self.user_id != user_id:
            return False
        return self.oa_id is None or self.oa_id == oa_id

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "api": self.api,
            "kind": self.kind,
            "user_id": self.user_id,
            "oa_id": self.oa_id,
            "value": self.value,
            "remaining": self.remaining,
            "fired": self.fired,
        }


class SandboxState:
    """All mutable state. Every public method takes :attr:`lock` (re-entrant)."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.pairs: list[TokenPair] = []
            self._by_access: dict[str, TokenPair] = {}
            self._by_refresh: dict[str, TokenPair] = {}
            self.codes: dict[str, AuthCode] = {}
            self.users: dict[tuple[str, str], UserRecord] = {}
            self.messages: list[RecordedMessage] = []
            self._message_ids: set[str] = set()
            self.uploads: dict[str, Upload] = {}
            self._uploads_by_month: dict[tuple[str, str], int] = {}
            self.articles: dict[str, Article] = {}
            self._articles_by_id: dict[str, Article] = {}
            self.faults: list[Fault] = []
            self._rate_minute: int | None = None
            self._rate_count = 0
            self._seq = 0
            self.media = MediaStore(
                max_bytes=self.settings.media_max_bytes,
                item_max_bytes=self.settings.media_item_max_bytes,
                url_lifetime_s=self.settings.media_url_lifetime_s,
                clock=self.settings.clock,
            )

    def now(self) -> float:
        return self.settings.clock()

    # ------------------------------------------------------------------ tokens and codes

    def issue_pair(self, oa_id: str, grant: str) -> TokenPair:
        """Mint a new pair: 25 h access token, 3-month single-use refresh token (§4.3)."""
        with self.lock:
            now = self.now()
            pair = TokenPair(
                oa_id=oa_id,
                access_token=self._unique(self._by_access, lambda: secrets.token_urlsafe(48)),
                refresh_token=self._unique(self._by_refresh, lambda: secrets.token_urlsafe(48)),
                grant=grant,
                issued_at=now,
                access_expires_at=now + self.settings.access_token_lifetime_s,
                refresh_expires_at=now + self.settings.refresh_token_lifetime_s,
            )
            self.pairs.append(pair)
            self._by_access[pair.access_token] = pair
            self._by_refresh[pair.refresh_token] = pair
            return pair

    def pair_by_access(self, token: str | None) -> TokenPair | None:
        with self.lock:
            return None if not token else self._by_access.get(token)

    def pair_by_refresh(self, token: str | None) -> TokenPair | None:
        with self.lock:
            return None if not token else self._by_refresh.get(token)

    def create_code(
        self, oa_id: str, code_challenge: str | None, redirect_uri: str | None
    ) -> AuthCode:
        with self.lock:
            now = self.now()
            code = AuthCode(
                code=self._unique(self.codes, lambda: secrets.token_urlsafe(32)),
                oa_id=oa_id,
                code_challenge=code_challenge,
                redirect_uri=redirect_uri,
                created_at=now,
                expires_at=now + self.settings.code_lifetime_s,
            )
            self.codes[code.code] = code
            return code

    # ------------------------------------------------------------------ users

    def user(self, oa_id: str, user_id: str) -> UserRecord | None:
        with self.lock:
            return self.users.get((oa_id, user_id))

    def ensure_user(self, oa_id: str, user_id: str) -> UserRecord:
        with self.lock:
            found = self.users.get((oa_id, user_id))
            if found is not None:
                return found
            self._seq += 1
            user = UserRecord(
                oa_id=oa_id,
                user_id=user_id,
                seq=self._seq,
                user_id_by_app="5" + "".join(secrets.choice("0123456789") for _ in range(18)),
                display_name=f"Người dùng {user_id[-4:]}",
                avatar=f"https://avatar.zalo-cdn.example/120/{user_id}.jpg",
            )
            self.users[(oa_id, user_id)] = user
            return user

    def users_of(self, oa_id: str) -> list[UserRecord]:
        with self.lock:
            return sorted((u for u in self.users.values() if u.oa_id == oa_id), key=lambda u: u.seq)

    # ------------------------------------------------------------------ messages

    def new_message_id(self) -> str:
        """A unique message id: 20 lowercase hex digits, like the fixtures."""
        with self.lock:
            while True:
                mid = secrets.token_hex(10)
                if mid not in self._message_ids:
                    self._message_ids.add(mid)
                    return mid

    def record(self, message: RecordedMessage) -> RecordedMessage:
        with self.lock:
            self._message_ids.add(message.message_id)
            self.messages.append(message)
            return message

    def find_messages(
        self, *, oa_id: str | None = None, user_id: str | None = None, direction: str | None = None
    ) -> list[RecordedMessage]:
        with self.lock:
            return [
                m
                for m in self.messages
                if (oa_id is None or m.oa_id == oa_id)
                and (user_id is None or m.user_id == user_id)
                and (direction is None or m.direction == direction)
            ]

    # ------------------------------------------------------------------ uploads and articles

    def add_upload(self, upload: Upload) -> None:
        with self.lock:
            self.uploads[upload.id] = upload
            key = (upload.oa_id, vn_datetime(upload.created_at).strftime("%Y-%m"))
            self._uploads_by_month[key] = self._uploads_by_month.get(key, 0) + 1

    def uploads_this_month(self, oa_id: str, now: float) -> int:
        with self.lock:
            return self._uploads_by_month.get((oa_id, vn_datetime(now).strftime("%Y-%m")), 0)

    def new_upload_id(self, kind: str) -> str:
        with self.lock:
            make = (
                (lambda: secrets.token_urlsafe(48))
                if kind == "file"
                else (lambda: secrets.token_urlsafe(27))
            )
            return self._unique(self.uploads, make)

    def add_article(self, article: Article) -> None:
        with self.lock:
            self.articles[article.token] = article

    def new_article_token(self) -> str:
        with self.lock:
            return self._unique(self.articles, lambda: secrets.token_urlsafe(36) + "==")

    def verify_article(self, article: Article) -> str:
        with self.lock:
            if article.article_id is None:
                article.article_id = self._unique(
                    self._articles_by_id, lambda: secrets.token_hex(10)
                )
                self._articles_by_id[article.article_id] = article
            return article.article_id

    def article_by_id(self, article_id: str) -> Article | None:
        with self.lock:
            return self._articles_by_id.get(article_id)

    # ------------------------------------------------------------------ rate limit

    def take_rate(self, now: float) -> tuple[bool, int]:
        """Count one OA API call in the current minute (README §3.1: 4,000/min per App).

        Returns (allowed, remaining after this call). Refused calls are not counted.
        """
        with self.lock:
            minute = int(now // 60)
            if minute != self._rate_minute:
                self._rate_minute = minute
                self._rate_count = 0
            limit = self.settings.rate_limit_per_minute
            if self._rate_count >= limit:
                return False, 0
            self._rate_count += 1
            return True, limit - self._rate_count

    def rate_remaining(self, now: float) -> int:
        with self.lock:
            if int(now // 60) != self._rate_minute:
                return self.settings.rate_limit_per_minute
            return max(0, self.settings.rate_limit_per_minute - self._rate_count)

    # ------------------------------------------------------------------ faults

    def add_fault(
        self,
        *,
        api: str,
        kind: FaultKind,
        user_id: str | None,
        oa_id: str | None,
        value: float | int | None,
        count: int | None,
    ) -> Fault:
        with self.lock:
            fault = Fault(
                id=secrets.token_hex(6),
                api=api,
                kind=kind,
                user_id=user_id,
                oa_id=oa_id,
                value=value,
                remaining=count,
            )
            self.faults.append(fault)
            return fault

    def remove_fault(self, fault_id: str) -> bool:
        with self.lock:
            before = len(self.faults)
            self.faults = [f for f in self.faults if f.id != fault_id]
            return len(self.faults) != before

    def clear_faults(self) -> int:
        with self.lock:
            n = len(self.faults)
            self.faults = []
            return n

    def take_faults(self, api: str, user_id: str | None, oa_id: str | None) -> list[Fault]:
        """Fire the faults matching one call: every ``latency`` fault plus the first other one.

        Each fired fault with a count is decremented; exhausted ones are dropped.
        """
        with self.lock:
            fired: list[Fault] = []
            terminal = False
            for fault in self.faults:
                if not fault.matches(api, user_id, oa_id):
                    continue
                if fault.kind != "latency":
                    if terminal:
                        continue
                    terminal = True
                fired.append(fault)
                fault.fired += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return fired

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _unique(existing: Any, make: Any) -> str:
        while True:
            value = make()
            if value not in existing:
                return str(value)
