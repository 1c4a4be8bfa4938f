"""Settings of the embedded stack (``ketnoi up``)."""

from __future__ import annotations

from pydantic import Field

from ketnoi_shared.settings import CommonSettings

__all__ = ["StackSettings"]


class StackSettings(CommonSettings):
    embedded_kafka_port: int = Field(
        default=19092,
        description="Port of the embedded Tansu broker (used when KETNOI_KAFKA_BOOTSTRAP is "
        "not set). Each service's port can be moved with KETNOI_<SERVICE>_PORT, e.g. "
        "KETNOI_INGEST_PORT=8080.",
    )
