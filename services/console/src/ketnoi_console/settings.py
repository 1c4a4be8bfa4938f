"""Console settings (``KETNOI_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
