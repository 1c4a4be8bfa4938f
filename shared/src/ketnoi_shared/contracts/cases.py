"""reports.triaged.v1: the state of a case after every change (triage or an operator)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .base import Envelope, Pseudonym
from .notify import NotifyRecipient

__all__ = ["CaseLocation", "CaseStatus", "Category", "TriagedCase", "Urgency"]


class Category(StrEnum):
    CRIME = "crime"
    SOCIAL_EVILS = "social_evils"
    TRAFFIC = "traffic"
    PUBLIC_ORDER = "public_order"
    ADMIN = "admin"
    OTHER = "other"


class Urgency(StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class CaseStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    VERIFYING = "verifying"
    HANDLED = "handled"
    CLOSED = "closed"
    REJECTED = "rejected"


class CaseLocation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ward_code: str | None = None
    ward_name: str | None = None
    province_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    source: str = Field(description="attachment, text or oa (the OA's own unit).")
    distance_km: float | None = None


class TriagedCase(Envelope):
    """Key: case_id, so every version of one case stays ordered."""

    case_id: str
    reference: str = Field(description="Short code given to the citizen, e.g. LD-7K2Q9.")
    version: int = Field(ge=1, description="Increases with every change of the case.")
    oa_id: str
    citizen_pseudonym: Pseudonym
    status: CaseStatus
    category: Category
    subcategory: str | None = None
    urgency: Urgency
    confidence: float = Field(ge=0, le=1)
    explanation: str = ""
    decided_by: str = Field(default="auto", description="auto, or operator:<account id>.")
    owner_unit_id: str | None = None
    info_unit_ids: tuple[str, ...] = ()
    location: CaseLocation | None = None
    location_unknown: bool = False
    outside_province: bool = False
    message_count: int = Field(ge=0)
    opened_at: AwareDatetime
    last_message_at: AwareDatetime
    question: str | None = Field(
        default=None,
        description="Procedure questions (category admin) only: the text of the message that "
        "changed the case, for the automatic answer.",
    )
    question_msg_id: str | None = Field(
        default=None, description="The Zalo msg_id of that message, to quote in the answer."
    )
    reply_to: NotifyRecipient | None = Field(
        default=None,
        description="Procedure questions only: where an answer goes (pseudonym, sealed ids).",
    )

    def partition_key(self) -> str:
        return self.case_id

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        *,
        occurred_at: datetime,
        correlation_id: str,
        **extra: Any,
    ) -> TriagedCase:
        """The contract of a ``cases`` row (the case store's columns, ``location`` as JSON
        text): one place for triage and the console, which both publish case changes."""
        location = json.loads(row["location"]) if row["location"] else None
        return cls(
            event_id=f"case:{row['id']}:v{row['version']}",
            occurred_at=occurred_at,
            correlation_id=correlation_id,
            case_id=str(row["id"]),
            reference=row["reference"],
            version=row["version"],
            oa_id=row["oa_id"],
            citizen_pseudonym=row["citizen_pseudonym"],
            status=CaseStatus(row["status"]),
            category=Category(row["category"]),
            subcategory=row["subcategory"],
            urgency=Urgency(row["urgency"]),
            confidence=max(0.0, min(1.0, float(row["confidence"]))),
            explanation=row["explanation"],
            decided_by=row["decided_by"],
            owner_unit_id=row["owner_unit_id"],
            info_unit_ids=tuple(row["info_unit_ids"]),
            location=CaseLocation(
                **{k: location.get(k) for k in CaseLocation.model_fields}
                | {"source": location.get("source", "text")}
            )
            if location
            else None,
            location_unknown=row["location_unknown"],
            outside_province=row["outside_province"],
            message_count=row["message_count"],
            opened_at=row["opened_at"],
            last_message_at=row["last_message_at"],
            **extra,
        )
