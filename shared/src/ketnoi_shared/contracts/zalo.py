"""zalo.events.v1: verified Zalo OA webhook events, normalised and with identities protected."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import Envelope, Pseudonym, Sealed

__all__ = [
    "Attachment",
    "CitizenRef",
    "EventKind",
    "Location",
    "SubmittedInfo",
    "ZaloEvent",
    "ZaloMessage",
]


class EventKind(StrEnum):
    MESSAGE = "message"  # user_send_*, anonymous_send_*
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    CHAT_NOW = "chat_now"  # user_click_chatnow
    SUBMIT_INFO = "submit_info"  # user_submit_info
    REACTION = "reaction"  # user_reacted_message
    RECEIVED = "received"  # user_received_message
    SEEN = "seen"  # user_seen_message
    OA_ECHO = "oa_echo"  # oa_send_* sent by a human admin from Zalo's chat tool
    UNKNOWN = "unknown"  # anything else, kept with its original name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitizenRef(_Model):
    """Who wrote, without saying who: a pseudonym plus what is needed to reply, sealed."""

    pseudonym: Pseudonym
    sealed_user_id: Sealed | None = Field(
        default=None, description="OA-scoped user id (or anonymous id), sealed; replies use it."
    )
    sealed_user_id_by_app: Sealed | None = None
    anonymous: bool = False
    sealed_conversation_id: Sealed | None = Field(
        default=None, description="Anonymous conversation id, needed with the anonymous id."
    )


class Location(_Model):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Attachment(_Model):
    type: str = Field(description="image, gif, video, audio, file, link, sticker, location, ...")
    url: str | None = None
    thumbnail: str | None = None
    description: str | None = None
    name: str | None = None
    size: int | None = None
    checksum: str | None = None
    file_type: str | None = None
    sticker_id: str | None = None
    location: Location | None = None
    sealed_card: Sealed | None = Field(
        default=None, description="Business card contents (phone, QR), sealed."
    )


class ZaloMessage(_Model):
    msg_id: str | None = None
    text: str | None = Field(default=None, description="NFC-normalised text.")
    attachments: tuple[Attachment, ...] = ()
    quote_msg_id: str | None = None
    msg_ids: tuple[str, ...] = Field(default=(), description="user_seen_message ids.")
    react_icon: str | None = None


class SubmittedInfo(_Model):
    """user_submit_info: every personal field sealed; only coarse place names in clear."""

    sealed_name: Sealed | None = None
    sealed_phone: Sealed | None = None
    sealed_address: Sealed | None = None
    sealed_raw: Sealed | None = Field(default=None, description="The whole original info object.")
    city: str | None = None
    district: str | None = None
    ward: str | None = None


class ZaloEvent(Envelope):
    """One verified webhook event. Key: the citizen pseudonym (else the OA id)."""

    event_name: str = Field(description="Zalo event name, or 'unknown'.")
    original_event_name: str | None = Field(
        default=None, description="The name Zalo sent, when event_name is 'unknown'."
    )
    kind: EventKind
    app_id: str
    oa_id: str
    citizen: CitizenRef | None = None
    message: ZaloMessage | None = None
    submitted_info: SubmittedInfo | None = None
    follow_source: str | None = None
    admin_id: str | None = Field(
        default=None, description="OA admin (an officer, not a citizen) for human echoes."
    )
    zalo_timestamp_ms: int = Field(ge=0, description="Zalo's event timestamp, epoch ms.")
    num_retry: int = Field(default=0, ge=0, description="Zalo's delivery retry counter.")
    source: Literal["webhook", "spool", "reconciler"] = "webhook"

    def partition_key(self) -> str:
        return self.citizen.pseudonym if self.citizen else f"oa:{self.oa_id}"
