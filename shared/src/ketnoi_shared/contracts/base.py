"""The envelope every Ketnoi message carries, and reusable field types."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "Envelope",
    "Pseudonym",
    "Sealed",
    "new_event_id",
    "utcnow",
]

#: A keyed pseudonym of a citizen (see :mod:`ketnoi_shared.identity`).
Pseudonym = Annotated[str, StringConstraints(pattern=r"^psn_[0-9a-f]{32}$")]
#: An identifier sealed with authenticated encryption (see :mod:`ketnoi_shared.identity`).
Sealed = Annotated[str, StringConstraints(pattern=r"^sealed:v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$")]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex


class Envelope(BaseModel):
    """Fields every message on every topic carries (also copied into Kafka headers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Version of the value model; bump on an incompatible change (and the topic's version).
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique id of this fact; consumers deduplicate on it.",
    )
    schema_version: int = Field(default=1, ge=1)
    occurred_at: AwareDatetime = Field(description="When the fact happened (UTC).")
    produced_at: AwareDatetime = Field(
        default_factory=utcnow, description="When this message was produced (UTC)."
    )
    correlation_id: str = Field(
        min_length=1,
        max_length=200,
        description="Id tying together every message caused by one citizen action.",
    )
