"""Turn a verified Zalo webhook body into the ``zalo.events.v1`` contract.

The body is parsed with ``parse_int=str`` and ``parse_float=str`` so ids and timestamps keep
their exact text (ids exceed 2^53; a numeric timestamp must be hashed as written). Identities
leave this module only as pseudonyms and sealed tokens.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ketnoi_shared.contracts import (
    Attachment,
    EventKind,
    Location,
    SubmittedInfo,
    ZaloEvent,
)
from ketnoi_shared.identity import IdentityProtector

__all__ = ["BadShapeError", "Envelope", "event_id_for", "normalize", "read_envelope"]

USER_SEND_PREFIX: Final = "user_send_"
ANON_PREFIX: Final = "anonymous_send_"
OA_ECHO_PREFIXES: Final = ("oa_send_",)
_KINDS: Final = {
    "follow": EventKind.FOLLOW,
    "unfollow": EventKind.UNFOLLOW,
    "user_click_chatnow": EventKind.CHAT_NOW,
    "user_submit_info": EventKind.SUBMIT_INFO,
    "user_reacted_message": EventKind.REACTION,
    "user_received_message": EventKind.RECEIVED,
    "user_seen_message": EventKind.SEEN,
}
MAX_ID_LEN: Final = 64


class BadShapeError(ValueError):
    """The body is JSON but not a Zalo event we can read (missing or mistyped fields)."""


def _s(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise BadShapeError(f"missing {field}")
        return None
    if not isinstance(value, str) or len(value) > MAX_ID_LEN:
        raise BadShapeError(f"{field} is not an id")
    return value


def _obj(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadShapeError(f"{field} is not an object")
    return value


@dataclass(frozen=True, slots=True)
class Envelope:
    """What signature verification needs, read before anything else."""

    event_name: str
    app_id: str
    timestamp: str
    oa_candidates: tuple[str, ...]


def read_envelope(body: Any) -> Envelope:
    if not isinstance(body, dict):
        raise BadShapeError("body is not a JSON object")
    event_name = body.get("event_name")
    if not isinstance(event_name, str) or not event_name or len(event_name) > 100:
        raise BadShapeError("missing event_name")
    app_id = _s(body.get("app_id"), "app_id")
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp.isdigit() or len(timestamp) > 16:
        raise BadShapeError("timestamp is not epoch milliseconds")
    sender = _obj(body.get("sender"), "sender")
    recipient = _obj(body.get("recipient"), "recipient")
    candidates: list[str] = []
    if isinstance(body.get("oa_id"), str):
        candidates.append(body["oa_id"])
    first, second = (sender, recipient) if _oa_is_sender(event_name) else (recipient, sender)
    for side in (first, second):
        if isinstance(side.get("id"), str):
            candidates.append(side["id"])
    assert app_id is not None
    return Envelope(event_name, app_id, timestamp, tuple(dict.fromkeys(candidates)))


def _oa_is_sender(event_name: str) -> bool:
    return event_name.startswith(OA_ECHO_PREFIXES) or event_name in {
        "user_received_message",
        "user_seen_message",
        "oa_reacted_message",
    }


def event_id_for(event_name: str, *, msg_id: str | None, oa_id: str, who: str, ts: str) -> str:
    """The dedup key: (event_name, msg_id) for message events, else (name, OA, user, time).

    ``who`` is the citizen's pseudonym, never the clear id.
    """
    if msg_id:
        return f"{event_name}:{msg_id}"
    return f"{event_name}:{oa_id}:{who}:{ts}"


def _nfc(text: Any) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise BadShapeError("text is not a string")
    return unicodedata.normalize("NFC", text)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _location(obj: dict[str, Any]) -> Location | None:
    lat = _float(obj.get("latitude", obj.get("lat")))
    lon = _float(obj.get("longitude", obj.get("long", obj.get("lng"))))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(latitude=lat, longitude=lon)


def _attachment(raw: Any, *, event_name: str, protect: IdentityProtector) -> Attachment:
    att = _obj(raw, "attachment")
    kind = att.get("type")
    if not isinstance(kind, str):
        raise BadShapeError("attachment without type")
    payload = _obj(att.get("payload"), "attachment payload")
    location = None
    if kind == "location" or "coordinates" in payload:
        location = _location(_obj(payload.get("coordinates"), "coordinates"))
    size = payload.get("size")
    sealed_card = None
    description = payload.get("description")
    url = payload.get("url")
    if event_name.endswith("business_card"):
        # The card holds a phone number and a QR link: identity, so sealed whole.
        sealed_card = protect.seal(json.dumps(payload, ensure_ascii=False), purpose="card")
        description = url = None
    return Attachment(
        type=kind,
        url=url if isinstance(url, str) else None,
        thumbnail=payload.get("thumbnail") if isinstance(payload.get("thumbnail"), str) else None,
        description=_nfc(description) if isinstance(description, str) else None,
        name=_nfc(payload.get("name")) if isinstance(payload.get("name"), str) else None,
        size=int(size) if isinstance(size, str) and size.isdigit() and len(size) < 16 else None,
        checksum=payload.get("checksum") if isinstance(payload.get("checksum"), str) else None,
        file_type=payload.get("type") if isinstance(payload.get("type"), str) else None,
        sticker_id=payload.get("id") if isinstance(payload.get("id"), str) else None,
        location=location,
        sealed_card=sealed_card,
    )


def _submitted_info(info: dict[str, Any], protect: IdentityProtector) -> SubmittedInfo:
    full = _obj(info.get("full_address"), "full_address")

    def seal(value: Any, purpose: str) -> str | None:
        return protect.seal(str(value), purpose=purpose) if value not in (None, "") else None

    address = full.get("user_address", info.get("address"))
    return SubmittedInfo(
        sealed_name=seal(info.get("name"), "name"),
        sealed_phone=seal(info.get("phone"), "phone"),
        sealed_address=seal(address, "address"),
        sealed_raw=protect.seal(json.dumps(info, ensure_ascii=False), purpose="submit_info"),
        city=_str_or_none(full.get("user_city", info.get("city"))),
        district=_str_or_none(info.get("district")),
        ward=_str_or_none(full.get("user_ward", info.get("ward"))),
    )


def _str_or_none(value: Any) -> str | None:
    return unicodedata.normalize("NFC", value)[:200] if isinstance(value, str) and value else None


def normalize(  # noqa: PLR0912 - one branch per Zalo event shape, kept together
    body: dict[str, Any],
    env: Envelope,
    *,
    oa_id: str,
    protect: IdentityProtector,
    num_retry: int = 0,
) -> ZaloEvent | None:
    """The contract event for ``body``, or None for an event we drop (our own API echoes)."""
    name = env.event_name
    sender = _obj(body.get("sender"), "sender")
    recipient = _obj(body.get("recipient"), "recipient")
    message_raw = _obj(body.get("message"), "message")

    admin_id = None
    if name.startswith(OA_ECHO_PREFIXES):
        admin_id = _s(sender.get("admin_id"), "sender.admin_id", required=False)
        if admin_id is None:
            return None  # echo of our own API send: processing it would loop
        kind = EventKind.OA_ECHO
    elif name.startswith((USER_SEND_PREFIX, ANON_PREFIX)):
        kind = EventKind.MESSAGE
    else:
        kind = _KINDS.get(name, EventKind.UNKNOWN)

    # The citizen: the side of the conversation that is not the OA.
    anonymous = name.startswith(ANON_PREFIX)
    user_id: str | None
    if "follower" in body:
        user_id = _s(_obj(body["follower"], "follower").get("id"), "follower.id")
    elif "user_id" in body:
        user_id = _s(body.get("user_id"), "user_id")
    else:
        ids = [_s(side.get("id"), "id", required=False) for side in (sender, recipient)]
        user_id = next((i for i in ids if i and i != oa_id), None)
    by_app = _s(body.get("user_id_by_app"), "user_id_by_app", required=False)

    # The nested parts are plain dicts of the contract's fields: the event is validated once,
    # as a whole, at the end (one pydantic validation instead of one per model).
    citizen: dict[str, Any] | None = None
    if user_id is not None:
        conversation_id = _s(message_raw.get("conversation_id"), "conversation_id", required=False)
        citizen = {  # CitizenRef
            "pseudonym": protect.pseudonym(
                user_id, purpose="zalo-anon" if anonymous else "zalo-user"
            ),
            "sealed_user_id": protect.seal(user_id, purpose="zalo_user_id"),
            "sealed_user_id_by_app": protect.seal(by_app, purpose="zalo_user_id_by_app")
            if by_app
            else None,
            "anonymous": anonymous,
            "sealed_conversation_id": protect.seal(conversation_id, purpose="zalo_conversation_id")
            if conversation_id
            else None,
        }

    message: dict[str, Any] | None = None
    if message_raw:
        attachments_raw = message_raw.get("attachments") or []
        if not isinstance(attachments_raw, list) or len(attachments_raw) > 50:
            raise BadShapeError("attachments is not a list")
        attachments = [_attachment(a, event_name=name, protect=protect) for a in attachments_raw]
        if "location" in message_raw:  # third-party variant
            loc = _location(_obj(message_raw["location"], "location"))
            attachments.append(Attachment(type="location", location=loc))
        msg_ids = message_raw.get("msg_ids") or []
        if not isinstance(msg_ids, list) or not all(isinstance(i, str) for i in msg_ids):
            raise BadShapeError("msg_ids is not a list of ids")
        quote = message_raw.get("quote_msg_id", body.get("quote_msg_id"))
        message = {  # ZaloMessage
            "msg_id": _s(message_raw.get("msg_id"), "msg_id", required=False),
            "text": _nfc(message_raw.get("text")),
            "attachments": tuple(attachments),
            "quote_msg_id": quote if isinstance(quote, str) else None,
            "msg_ids": tuple(msg_ids[:200]),
            "react_icon": _str_or_none(message_raw.get("react_icon")),
        }

    info = None
    if kind is EventKind.SUBMIT_INFO:
        info = _submitted_info(_obj(body.get("info"), "info"), protect)

    who = citizen["pseudonym"] if citizen else "-"
    event_id = event_id_for(
        name, msg_id=message["msg_id"] if message else None, oa_id=oa_id, who=who, ts=env.timestamp
    )
    source = body.get("source")
    return ZaloEvent.model_validate(
        {
            "event_id": event_id,
            "correlation_id": event_id,
            "occurred_at": datetime.fromtimestamp(int(env.timestamp) / 1000, UTC),
            "event_name": "unknown" if kind is EventKind.UNKNOWN else name,
            "original_event_name": name if kind is EventKind.UNKNOWN else None,
            "kind": kind,
            "app_id": env.app_id,
            "oa_id": oa_id,
            "citizen": citizen,
            "message": message,
            "submitted_info": info,
            "follow_source": source if isinstance(source, str) else None,
            "admin_id": admin_id,
            "zalo_timestamp_ms": int(env.timestamp),
            "num_retry": num_retry,
        }
    )
