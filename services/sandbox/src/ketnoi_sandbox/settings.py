"""Settings of the Zalo OA sandbox, and a manual clock for tests.

Every number here is a Zalo rule taken from ``shared/zalo/README.md`` (section given on each
field) unless it is marked *sandbox choice*.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_APP_SECRET",
    "DEFAULT_OA_ID",
    "ManualClock",
    "SandboxSettings",
]

#: The fake identities shared by all fixtures (shared/zalo/fixtures/INDEX.md).
DEFAULT_APP_ID = "1234567890123456789"
DEFAULT_OA_ID = "4123456789012345678"
#: Not in the fixtures (they use ``<APP_SECRET_KEY>``); the value the repo's tests already use.
DEFAULT_APP_SECRET = "TESTAPPSECRETKEY0001"  # noqa: S105 (fake, like every fixture value)

DAY_S = 86_400
MIB = 1024 * 1024


class ManualClock:
    """A clock that only moves when told to: ``clock()`` returns epoch seconds (a float).

    Pass one as ``SandboxSettings(clock=...)`` to test expiry and the interaction window without
    waiting. Thread-safe.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, epoch_s: float) -> None:
        """Jump to ``epoch_s`` (forwards or backwards)."""
        with self._lock:
            self._now = float(epoch_s)


class SandboxSettings(BaseModel):
    """What the sandbox knows about the one Zalo App it fakes, and the limits it enforces."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    #: The App id (``app_id`` in OAuth forms and the consent link). README §4.
    app_id: str = DEFAULT_APP_ID
    #: The App Secret Key, checked in the ``secret_key`` header of the token endpoint (§4.2) and
    #: used as the HMAC key of the optional ``appsecret_proof`` header (§3.1).
    app_secret: str = DEFAULT_APP_SECRET
    #: OA id → OA name: the OAs linked to the App that can grant access.
    #: The default is the demo directory's owner of the fixtures' OA id (triage demo_oas.yaml).
    oas: dict[str, str] = Field(
        default_factory=lambda: {DEFAULT_OA_ID: "Công an phường Xuân Hương - Đà Lạt"}
    )
    #: Registered callback URLs (§4.1: an unregistered redirect gets -14003). Empty = any URL is
    #: accepted (sandbox convenience).
    redirect_uris: tuple[str, ...] = ()

    #: Access token lifetime: 25 h, returned as the string "90000" (§4.2, §4.3).
    access_token_lifetime_s: int = Field(default=90_000, gt=0)
    #: Refresh token lifetime: 3 months, single-use (§4.3). 3 months taken as 90 days.
    refresh_token_lifetime_s: int = Field(default=90 * DAY_S, gt=0)
    #: Authorisation code: valid 10 minutes, single-use (§4.1).
    code_lifetime_s: int = Field(default=600, gt=0)
    #: PKCE: whether the consent link and the code exchange must carry it. §4.1 says it is
    #: unverified whether Zalo requires it; the sandbox is strict by default.
    require_pkce: bool = True
    #: Error for a *known* access token past its expiry. §3.6 lists both -216 "Access token is
    #: invalid" and -220 "access_token is expired or removed" with the same client action; the
    #: sandbox answers -216 for expired and unknown tokens and -220 for revoked ones by default.
    expired_token_error: Literal[-216, -220] = -216
    #: Require the ``appsecret_proof`` header (§3.1: optional in the PHP SDK, reportedly mandatory
    #: on graph.zalo.me). A present but wrong proof is always refused with -242.
    require_appsecret_proof: bool = False

    #: OA API rate limit per App per minute, error -32 (§3.1).
    rate_limit_per_minute: int = Field(default=4_000, gt=0)
    #: Consultation messages only within 7 days of the user's last interaction (§3.4).
    interaction_window_s: int = Field(default=7 * DAY_S, gt=0)
    #: Free-reply span (§3.4): recorded per send as ``billed`` for tests (no effect on answers).
    free_window_s: int = Field(default=2 * DAY_S, gt=0)
    #: Whether CS to a non-follower who interacted is refused with -213 (§7.1 item 9: open).
    cs_requires_follower: bool = False
    #: Whether the CS answer carries ``data.quota`` (dropped after 2026-03-01, §3.2).
    cs_response_quota: bool = False
    #: Maximum CS text length, counted in code points after NFC normalisation (§3.2, §6 item 8).
    max_text_chars: int = 2_000
    #: Refuse broadcasts 22:00–06:00 Vietnam time with -234 (§3.4, §5.2).
    broadcast_night_ban: bool = True

    #: Upload limits (§3.5, 3P spec only): images jpg/png ≤ 1 MB, files PDF/DOC/DOCX ≤ 5 MB,
    #: 5,000 uploads per month, ids expire after 7 days (-100). "MB" taken as MiB; GIFs get the
    #: image limit (sandbox choice: no source gives one).
    image_max_bytes: int = 1 * MIB
    file_max_bytes: int = 5 * MIB
    uploads_per_month: int = 5_000
    upload_lifetime_s: int = 7 * DAY_S
    #: Seconds an article stays "being processed" (-214 from verify) after create (§5.1).
    article_processing_s: float = 0.0

    #: Base URL of the sandbox in the attachment links it hands out (``<base>/media/<id>``);
    #: None: the URL the citizen's request came to (sandbox choice).
    public_url: str | None = None
    #: Lifetime of an attachment link in a webhook. Zalo documents none (§1.4, §6 item 9); CDN
    #: links are signed and expire, so the sandbox's do too (sandbox choice: 6 h). An expired or
    #: tampered link gets 403.
    media_url_lifetime_s: int = Field(default=6 * 3600, gt=0)
    #: Bytes of citizens' media kept in memory; the oldest are dropped beyond (sandbox choice).
    media_max_bytes: int = Field(default=64 * MIB, gt=0)
    #: Largest single photo, video or file a simulated citizen can send (sandbox choice).
    media_item_max_bytes: int = Field(default=16 * MIB, gt=0)

    #: How long a ``timeout`` / ``timeout_after_write`` fault hangs before answering 504
    #: (sandbox choice; longer than any sane client timeout).
    hang_s: float = Field(default=120.0, ge=0)

    #: Epoch seconds; inject a :class:`ManualClock` in tests.
    clock: Callable[[], float] = Field(default=time.time, exclude=True)

    def oa_name(self, oa_id: str) -> str:
        return self.oas.get(oa_id, "")
