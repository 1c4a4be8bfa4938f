"""notify.requests.v1 and notify.results.v1: messages to citizens through the Zalo OA API."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .base import Envelope, Pseudonym, Sealed

__all__ = [
    "DeliveryErrorKind",
    "DeliveryStatus",
    "NotifyKind",
    "NotifyRecipient",
    "NotifyRequest",
    "NotifyResult",
]


class NotifyKind(StrEnum):
    ACK = "ack"  # automatic acknowledgement of a tip
    REPLY = "reply"  # an officer's reply
    ANSWER = "answer"  # automatic answer to a procedure question
    NEWS = "news"
    WELCOME = "welcome"
    GREETING = "greeting"
    TRANSFER = "transfer"  # the citizen is told another unit now handles the case


class NotifyRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pseudonym: Pseudonym
    sealed_user_id: Sealed
    anonymous: bool = False
    sealed_conversation_id: Sealed | None = None


class NotifyRequest(Envelope):
    """Key: recipient pseudonym, so the messages to one citizen stay in order.

    ``event_id`` is the request id: the notifier sends each request at most once.
    """

    oa_id: str
    recipient: NotifyRecipient
    kind: NotifyKind
    text: str = Field(min_length=1, max_length=20_000)
    quote_message_id: str | None = None
    image_url: str | None = None
    case_id: str | None = None
    reference: str | None = None
    requested_by: str = Field(default="system", description="system, or officer:<account id>.")
    not_after: AwareDatetime | None = Field(
        default=None, description="Drop the request if it cannot be sent before this time."
    )

    def partition_key(self) -> str:
        return self.recipient.pseudonym


class DeliveryStatus(StrEnum):
    SENT = "sent"
    RETRYING = "retrying"
    WAITING_TOKEN = "waiting_token"  # noqa: S105 - a status name, not a secret
    FAILED = "failed"


class DeliveryErrorKind(StrEnum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    NEEDS_TOKEN = "needs_token"  # noqa: S105 - an error kind, not a secret
    OUTSIDE_WINDOW = "outside_window"
    RATE_LIMITED = "rate_limited"


class NotifyResult(Envelope):
    """Key: recipient pseudonym. One per attempt outcome of a request."""

    request_id: str
    oa_id: str
    recipient_pseudonym: Pseudonym
    case_id: str | None = None
    kind: NotifyKind
    attempt: int = Field(ge=1)
    status: DeliveryStatus
    zalo_message_ids: tuple[str, ...] = ()
    error_code: int | None = None
    error_kind: DeliveryErrorKind | None = None
    error_message: str | None = Field(
        default=None, description="Plain Vietnamese explanation for officers."
    )

    def partition_key(self) -> str:
        return self.recipient_pseudonym
