"""Notifier settings (``KETNOI_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ketnoi_shared.settings import CommonSettings

__all__ = ["NotifierSettings"]


class NotifierSettings(CommonSettings):
    zalo_app_id: str | None = Field(default=None, description="Zalo App id (OAuth).")
    zalo_app_secret: SecretStr | None = Field(
        default=None, description="Zalo App secret key (OAuth `secret_key` header). Secret."
    )
    zalo_openapi_url: str = Field(
        default="https://openapi.zalo.me", description="Zalo OA API base URL (or the sandbox)."
    )
    zalo_oauth_url: str = Field(
        default="https://oauth.zaloapp.com", description="Zalo OAuth base URL (or the sandbox)."
    )
    notifier_send_attempts: int = Field(
        default=5, description="Attempts per message on retryable Zalo errors."
    )
    notifier_workers: int = Field(
        default=6, description="Partitions of notify.requests.v1 sent in parallel per process."
    )
    notifier_rate_per_minute: int = Field(
        default=4000, description="Zalo API calls per minute for the app, all replicas together."
    )
    notifier_send_timeout_s: float = Field(
        default=60.0, description="Total time a message may spend in retries."
    )
