"""The citizen simulator page: a phone chatting with an OA, in Vietnamese (``GET /phone``).

The page (``templates/phone.html``, ``static/phone.js``, ``static/phone.css``; no build step, no
CDN) picks a simulated citizen and an OA, sends through ``POST /sandbox/citizen/send`` (so every
message is a signed webhook delivered to ingest exactly as Zalo would) and polls
``GET /sandbox/citizen/conversation`` every second for what the phone shows: the citizen's own
messages and what the OA sent them (message/cs, anonymous replies, broadcasts).

Stable selectors, relied on by browser tests: ``#phone-citizen``, ``#phone-oa``,
``#phone-text``, ``#phone-send``, ``#phone-photo``, ``#phone-sample-photo``,
``#phone-location`` with ``#phone-lat`` and ``#phone-lon``, ``#phone-follow``, and
``#phone-messages`` whose items are ``li.msg.from-citizen`` / ``li.msg.from-oa`` with the
message's text inside.
"""

from __future__ import annotations

import html
from importlib.resources import files
from string import Template
from typing import Any, Final

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from .media import DA_LAT
from .settings import SandboxSettings
from .state import RecordedMessage, SandboxState

__all__ = ["PRESET_CITIZENS", "add_phone_routes"]

#: Simulated citizens offered by the page: (Zalo user id, display name). The first is the
#: fixtures' user, the default of ``ketnoi sandbox say``.
PRESET_CITIZENS: Final = (
    ("8123456789012345678", "Nguyễn Văn An"),
    ("8123456789012345679", "Trần Thị Bình"),
    ("8123456789012345680", "Lê Hoàng Cường"),
    ("8123456789012345681", "Phạm Thu Dung"),
)
#: What the page shows at most (the newest).
MAX_SHOWN: Final = 200
#: Sandbox records that are not messages on the phone (a reaction marks an existing one).
_HIDDEN_KINDS: Final = frozenset({"reaction"})

_NO_SIMULATOR: Final = (
    '<p class="notice" id="phone-notice">Trình mô phỏng chưa được bật: sandbox chạy không có '
    "địa chỉ webhook (KETNOI_SANDBOX_WEBHOOK_URL), nên tin nhắn sẽ không được gửi đi. Hãy chạy "
    "<code>make run</code>.</p>"
)


def _options(items: list[tuple[str, str]], selected: str | None = None) -> str:
    return "".join(
        f'<option value="{html.escape(value)}" data-name="{html.escape(label)}"'
        f"{' selected' if value == selected else ''}>{html.escape(label)}</option>"
        for value, label in items
    )


def _page(settings: SandboxSettings, *, simulator: bool) -> str:
    template = Template(
        files("ketnoi_sandbox").joinpath("templates/phone.html").read_text(encoding="utf-8")
    )
    oas = list(settings.oas.items())
    return template.substitute(
        citizen_options=_options(list(PRESET_CITIZENS)),
        oa_options=_options([(oa, name or oa) for oa, name in oas]),
        oa_name=html.escape(oas[0][1] if oas else ""),
        lat=DA_LAT[0],
        lon=DA_LAT[1],
        notice="" if simulator else _NO_SIMULATOR,
    )


def _entry(message: RecordedMessage) -> dict[str, Any]:
    return {
        "id": message.message_id,
        "from": "oa" if message.direction == "oa" else "citizen",
        "kind": message.kind,
        "text": message.text or "",
        "attachments": message.attachments,
        "sent_at": round(message.sent_at * 1000),
    }


def add_phone_routes(
    app: FastAPI, settings: SandboxSettings, state: SandboxState, *, simulator: bool
) -> None:
    """Mount the page at ``/phone`` (``/`` redirects there), its static files and the
    conversation feed. ``simulator``: whether sending works (a webhook target is set)."""
    page = _page(settings, simulator=simulator)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/phone", status_code=307)

    @app.get("/phone", response_class=HTMLResponse, tags=["sandbox citizen"])
    def phone() -> HTMLResponse:
        """The citizen simulator: a phone chatting with an OA (Vietnamese)."""
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.mount(
        "/phone/static",
        StaticFiles(packages=[("ketnoi_sandbox", "static")]),
        name="phone-static",
    )

    @app.get("/sandbox/citizen/conversation", tags=["sandbox citizen"])
    def conversation(oa: str, user: str) -> dict[str, Any]:
        """What the citizen's phone shows in the chat with ``oa``, oldest first: the citizen's
        messages, the OA's messages to them and, if they follow it, the OA's broadcasts."""
        with state.lock:
            record = state.user(oa, user)
            following = record is not None and record.is_follower
            shown = [
                m
                for m in state.find_messages(oa_id=oa)
                if m.kind not in _HIDDEN_KINDS
                and (m.user_id == user or (m.kind == "broadcast" and following))
            ]
            return {
                "oa": {"id": oa, "name": settings.oa_name(oa)},
                "user": None if record is None else record.view(),
                "messages": [_entry(m) for m in shown[-MAX_SHOWN:]],
            }
