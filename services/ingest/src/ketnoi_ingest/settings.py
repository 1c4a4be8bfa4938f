"""Ingest settings (``KETNOI_*``), on top of the common ones."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ketnoi_shared.settings import CommonSettings

__all__ = ["IngestSettings"]


class IngestSettings(CommonSettings):
    zalo_oa_secret: SecretStr | None = Field(
        default=None,
        description="App-wide OA Secret Key (the Webhook tab's key, not the App Secret) used "
        "when an OA has no key of its own. Secret.",
    )
    zalo_oa_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per-OA secret keys as JSON, `{"<OA id>": "<OA secret key>"}`. Secret.',
    )
    zalo_app_id: str | None = Field(
        default=None,
        description="When set, webhooks whose app_id differs are refused (401).",
    )
    ingest_max_body_bytes: int = Field(
        default=256 * 1024, description="Largest webhook body accepted (413 above)."
    )
    ingest_publish_timeout_s: float = Field(
        default=0.8,
        description="How long a webhook waits for the broker's acks=all before the event is "
        "written to the PostgreSQL spool instead (Zalo's budget is 2 s).",
    )
    ingest_dedup_days: int = Field(
        default=14, description="How long event ids are remembered for edge deduplication."
    )
