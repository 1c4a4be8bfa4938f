"""Console settings (``KETNOI_*``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from ketnoi_shared.settings import CommonSettings

__all__ = ["ConsoleSettings"]


class ConsoleSettings(CommonSettings):
    console_session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs the console's session cookies (at least 32 characters). "
        "Secret; the console refuses to start without it.",
    )
    console_session_hours: float = Field(
        default=12.0, description="How long a console login lasts (one working shift)."
    )
    console_cookie_secure: bool = Field(
        default=False,
        description="Send the session cookie over HTTPS only. Set true behind TLS (production).",
    )
    console_login_max_failures: int = Field(
        default=5,
        description="Failed logins per account, and per client address, before logins are "
        "refused for the throttle window.",
    )
    console_login_window_s: int = Field(
        default=900, description="Throttle window for failed logins, in seconds."
    )
    console_reply_window_free_h: int = Field(
        default=48, description="Hours after the citizen's last message when replies are free."
    )
    console_reply_window_max_h: int = Field(
        default=168,
        description="Hours after the citizen's last message after which no reply can be sent.",
    )
    console_policy: Path | None = Field(
        default=None,
        description="Response-time policy file (targets per urgency, working hours per unit, "
        "legal deadline). Default: the one shipped in the console package.",
    )
    console_escalation_interval_s: float = Field(
        default=30.0, description="How often the console looks for escalations to raise."
    )
    console_service_urls: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Services whose /readyz and /metrics the operators' dashboard shows: JSON "
        '(`{"ingest": "http://10.0.0.5:8080"}`) or `name=url,name=url`. Empty: read '
        "`<data_dir>/endpoints.json`, which `ketnoi up` writes.",
    )

    @field_validator("console_service_urls", mode="before")
    @classmethod
    def _service_urls(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if value.startswith("{"):
            return json.loads(value)
        pairs = (p.split("=", 1) for p in value.split(",") if p.strip())
        return {name.strip(): url.strip() for name, url in pairs}
