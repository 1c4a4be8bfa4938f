"""Strict validation of request bodies against the shapes in ``shared/zalo/fixtures/api``.

Unknown keys, missing keys, wrong JSON types and unsupported variants are refused the way Zalo
refuses invalid parameters: ``-201 "<field> is invalid!"`` (README §3.6). A documented length or
size limit exceeded gives ``-210 "Parameter exceeds allowable limit"``; an attachment or template
type Zalo does not support on the endpoint gives ``-233 "message type is invalid or not
support"``. IDs must be JSON **strings** of digits, as in every fixture (README §6 item 7).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from .errors import ZaloError, invalid, too_long

__all__ = [
    "AnonymousSend",
    "ArticleDraft",
    "Broadcast",
    "GetListQuery",
    "MediaElement",
    "ParsedMessage",
    "Reaction",
    "nfc_length",
    "parse_article",
    "parse_conversation_query",
    "parse_cs_body",
    "parse_getlist_query",
    "parse_token_body",
    "parse_user_id_body",
    "parse_v2_message_body",
]

_DIGITS: Final = re.compile(r"[0-9]{1,32}")
_PERIOD_RANGE: Final = re.compile(
    r"([0-9]{4})_([0-9]{2})_([0-9]{2}):([0-9]{4})_([0-9]{2})_([0-9]{2})"
)
#: Broadcast target fields (README §5.2).
BROADCAST_TARGET_KEYS: Final = frozenset(
    {"ages", "gender", "locations", "cities", "platform", "telcos"}
)
#: Request-user-info limits (README §3.2, 3P): title ≤ 100, subtitle ≤ 500 characters.
USER_INFO_TITLE_MAX: Final = 100
USER_INFO_SUBTITLE_MAX: Final = 500
#: Article limits (README §5.1, 3P spec): title 150, author 50, description 300 characters.
ARTICLE_TITLE_MAX: Final = 150
ARTICLE_AUTHOR_MAX: Final = 50
ARTICLE_DESCRIPTION_MAX: Final = 300
#: Follower list paging (README §3.5, 3P spec): count ≤ 50, offset ≤ 9,951.
GETLIST_COUNT_MAX: Final = 50
GETLIST_OFFSET_MAX: Final = 9_951
#: Conversation paging (README §3.5): at most 10 per call.
CONVERSATION_COUNT_MAX: Final = 10


def nfc_length(text: str) -> int:
    """Length Zalo checks against the 2,000-character limit: code points after NFC (§6 item 8)."""
    return len(unicodedata.normalize("NFC", text))


# --------------------------------------------------------------------------- primitives


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(path)
    return value


def _keys(
    obj: dict[str, Any],
    path: str,
    required: set[str],
    optional: set[str] | frozenset[str] = frozenset(),
) -> None:
    prefix = f"{path}." if path else ""
    for key in sorted(required):
        if key not in obj:
            raise invalid(prefix + key)
    for key in obj:
        if key not in required and key not in optional:
            raise invalid(prefix + key)


def _str(value: Any, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise invalid(path)
    return value


def _id(value: Any, path: str) -> str:
    """An id: a JSON string of digits (fixtures; README §6 item 7 — numbers lose precision)."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise invalid(path)
    return value


def _url(value: Any, path: str) -> str:
    text = _str(value, path)
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise invalid(path)
    return text


def _int(value: Any, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(path)
    return value


def _text(value: Any, path: str, max_chars: int, *, allow_empty: bool) -> str:
    text = _str(value, path, allow_empty=allow_empty)
    if nfc_length(text) > max_chars:
        raise too_long()
    return text


def _limited(value: Any, path: str, max_chars: int) -> str:
    text = _str(value, path)
    if nfc_length(text) > max_chars:
        raise too_long()
    return text


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class MediaElement:
    """One element of a ``template_type: media`` payload (README §3.2)."""

    media_type: Literal["image", "gif", "sticker", "article"]
    url: str | None = None
    attachment_id: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A validated ``message`` object of a send."""

    kind: Literal["text", "media", "file", "request_user_info"]
    text: str | None = None
    quote_message_id: str | None = None
    media: MediaElement | None = None
    file_token: str | None = None
    user_info: dict[str, str] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _media_element(element: Any, path: str, *, allow_article: bool) -> MediaElement:
    el = _obj(element, path)
    media_type = el.get("media_type")
    if media_type == "image":
        # url or attachment_id, exactly one (fixtures message_cs_image_url / _attachment_id).
        if "url" in el:
            _keys(el, path, {"media_type", "url"})
            return MediaElement("image", url=_url(el["url"], f"{path}.url"))
        _keys(el, path, {"media_type", "attachment_id"})
        return MediaElement(
            "image", attachment_id=_str(el["attachment_id"], f"{path}.attachment_id")
        )
    if media_type == "gif":
        # gif needs attachment_id, width and height (README §3.2, PHP MessageBuilder).
        _keys(el, path, {"media_type", "attachment_id", "width", "height"})
        return MediaElement(
            "gif",
            attachment_id=_str(el["attachment_id"], f"{path}.attachment_id"),
            width=_int(el["width"], f"{path}.width", minimum=1),
            height=_int(el["height"], f"{path}.height", minimum=1),
        )
    if media_type == "sticker":
        _keys(el, path, {"media_type", "attachment_id"})
        return MediaElement(
            "sticker", attachment_id=_str(el["attachment_id"], f"{path}.attachment_id")
        )
    if media_type == "article" and allow_article:
        _keys(el, path, {"media_type", "attachment_id"})
        return MediaElement(
            "article", attachment_id=_str(el["attachment_id"], f"{path}.attachment_id")
        )
    raise invalid(f"{path}.media_type")


def _one_element(payload: dict[str, Any], path: str) -> Any:
    elements = payload["elements"]
    if not isinstance(elements, list) or len(elements) != 1:
        raise invalid(f"{path}.elements")
    return elements[0]


def parse_message(
    value: Any,
    *,
    max_text: int,
    path: str = "message",
    allow_quote: bool = True,
    allow_user_info: bool = True,
) -> ParsedMessage:
    """Validate a CS-style ``message`` object (README §3.2 table; fixtures message_cs_*).

    Accepted variants: text (optionally with ``quote_message_id``); ``template``/``media`` with
    one image (url or attachment_id), gif or sticker element and optional text; ``file`` with
    ``payload.token``; ``template``/``request_user_info`` with one ``{title, subtitle,
    image_url}`` element. List/button templates are not confirmed on v3 CS (§3.2) → -233.
    """
    msg = _obj(value, path)
    if "attachment" not in msg:
        _keys(msg, path, {"text"}, {"quote_message_id"} if allow_quote else set())
        text = _text(msg["text"], f"{path}.text", max_text, allow_empty=False)
        quote = msg.get("quote_message_id")
        if quote is not None or "quote_message_id" in msg:
            quote = _str(quote, f"{path}.quote_message_id")
        return ParsedMessage("text", text=text, quote_message_id=quote, raw=msg)

    attachment = _obj(msg["attachment"], f"{path}.attachment")
    apath = f"{path}.attachment"
    _keys(attachment, apath, {"type", "payload"})
    payload = _obj(attachment["payload"], f"{apath}.payload")
    ppath = f"{apath}.payload"
    a_type = attachment["type"]

    if a_type == "file":
        _keys(msg, path, {"attachment"})
        _keys(payload, ppath, {"token"})
        return ParsedMessage("file", file_token=_str(payload["token"], f"{ppath}.token"), raw=msg)

    if a_type != "template":
        raise ZaloError(-233)
    template_type = payload.get("template_type")
    if template_type == "media":
        _keys(msg, path, {"attachment"}, {"text"})
        _keys(payload, ppath, {"template_type", "elements"})
        element = _media_element(
            _one_element(payload, ppath), f"{ppath}.elements[0]", allow_article=False
        )
        caption: str | None = None
        if "text" in msg:
            caption = _text(msg["text"], f"{path}.text", max_text, allow_empty=True)
        return ParsedMessage("media", text=caption, media=element, raw=msg)
    if template_type == "request_user_info" and allow_user_info:
        _keys(msg, path, {"attachment"})
        _keys(payload, ppath, {"template_type", "elements"})
        epath = f"{ppath}.elements[0]"
        el = _obj(_one_element(payload, ppath), epath)
        _keys(el, epath, {"title", "subtitle", "image_url"})
        info = {
            "title": _limited(el["title"], f"{epath}.title", USER_INFO_TITLE_MAX),
            "subtitle": _limited(el["subtitle"], f"{epath}.subtitle", USER_INFO_SUBTITLE_MAX),
            "image_url": _url(el["image_url"], f"{epath}.image_url"),
        }
        return ParsedMessage("request_user_info", user_info=info, raw=msg)
    if not isinstance(template_type, str):
        raise invalid(f"{ppath}.template_type")
    raise ZaloError(-233)


def parse_cs_body(body: Any, *, max_text: int) -> tuple[str, ParsedMessage]:
    """``POST /v3.0/oa/message/cs`` body: ``{"recipient": {"user_id"}, "message": {...}}``.

    README §3.2. The anonymous recipient ``{anonymous_id, conversation_id}`` is documented only
    on the v2 path (§3.3), so it is refused here as an invalid recipient; so is the legacy
    ``recipient.message_id`` (not confirmed on v3, §3.3).
    """
    obj = _obj(body, "body")
    _keys(obj, "", {"recipient", "message"})
    recipient = _obj(obj["recipient"], "recipient")
    if set(recipient) != {"user_id"}:
        raise invalid("recipient")
    user_id = _id(recipient["user_id"], "recipient.user_id")
    return user_id, parse_message(obj["message"], max_text=max_text)


@dataclass(frozen=True, slots=True)
class Reaction:
    """``sender_action`` on ``/v2.0/oa/message`` (README §3.3; fixture reaction.request.json)."""

    user_id: str
    react_icon: str
    react_message_id: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Article broadcast on ``/v2.0/oa/message`` (README §5.2; fixture broadcast_article)."""

    target: dict[str, Any]
    article_id: str


@dataclass(frozen=True, slots=True)
class AnonymousSend:
    """Reply to an anonymous sender on ``/v2.0/oa/message`` (README §3.3)."""

    anonymous_id: str
    conversation_id: str
    message: ParsedMessage


def _target_value(value: Any, path: str) -> None:
    # [CONFLICT] README §5.2: comma-joined strings (.NET), integers (Java) or arrays (3P spec).
    if isinstance(value, bool):
        raise invalid(path)
    if isinstance(value, str) and value.strip():
        return
    if isinstance(value, int):
        return
    if (
        isinstance(value, list)
        and value
        and all(
            (isinstance(v, str) and v.strip()) or (isinstance(v, int) and not isinstance(v, bool))
            for v in value
        )
    ):
        return
    raise invalid(path)


def parse_v2_message_body(body: Any, *, max_text: int) -> Reaction | Broadcast | AnonymousSend:
    """Classify and validate a ``POST /v2.0/oa/message`` body.

    v2 send is shut down (README §3.3): an ordinary send addressed by ``recipient.user_id`` or the
    legacy ``recipient.message_id`` raises -240. Still accepted: reactions (``sender_action``),
    broadcast (``recipient.target``) and anonymous replies (``recipient{anonymous_id,
    conversation_id}``).
    """
    obj = _obj(body, "body")
    recipient = _obj(obj.get("recipient"), "recipient")

    if "sender_action" in obj:
        _keys(obj, "", {"recipient", "sender_action"})
        if set(recipient) != {"user_id"}:
            raise invalid("recipient")
        action = _obj(obj["sender_action"], "sender_action")
        _keys(action, "sender_action", {"react_icon", "react_message_id"})
        return Reaction(
            user_id=_id(recipient["user_id"], "recipient.user_id"),
            react_icon=_str(action["react_icon"], "sender_action.react_icon"),
            react_message_id=_str(action["react_message_id"], "sender_action.react_message_id"),
        )

    if "target" in recipient:
        _keys(obj, "", {"recipient", "message"})
        _keys(recipient, "recipient", {"target"})
        target = _obj(recipient["target"], "recipient.target")
        if not target:
            raise invalid("recipient.target")
        _keys(target, "recipient.target", set(), set(BROADCAST_TARGET_KEYS))
        for key, value in target.items():
            _target_value(value, f"recipient.target.{key}")
        msg = _obj(obj["message"], "message")
        _keys(msg, "message", {"attachment"})
        attachment = _obj(msg["attachment"], "message.attachment")
        _keys(attachment, "message.attachment", {"type", "payload"})
        if attachment["type"] != "template":
            raise ZaloError(-233)
        payload = _obj(attachment["payload"], "message.attachment.payload")
        _keys(payload, "message.attachment.payload", {"template_type", "elements"})
        if payload["template_type"] != "media":
            raise ZaloError(-233)
        epath = "message.attachment.payload.elements[0]"
        element = _media_element(
            _one_element(payload, "message.attachment.payload"), epath, allow_article=True
        )
        if element.media_type != "article" or element.attachment_id is None:
            # Through the API, broadcast carries articles only (README §5.2).
            raise ZaloError(-233)
        return Broadcast(target=dict(target), article_id=element.attachment_id)

    if "anonymous_id" in recipient or "conversation_id" in recipient:
        _keys(obj, "", {"recipient", "message"})
        _keys(recipient, "recipient", {"anonymous_id", "conversation_id"})
        return AnonymousSend(
            anonymous_id=_id(recipient["anonymous_id"], "recipient.anonymous_id"),
            conversation_id=_str(recipient["conversation_id"], "recipient.conversation_id"),
            message=parse_message(
                obj.get("message"), max_text=max_text, allow_quote=False, allow_user_info=False
            ),
        )

    if "user_id" in recipient or "message_id" in recipient:
        raise ZaloError(-240)
    raise invalid("recipient")


# --------------------------------------------------------------------------- other bodies


def parse_user_id_body(body: Any) -> str:
    """``{"user_id": "..."}`` (user/detail ``data``; quota/message body, README §3.5)."""
    obj = _obj(body, "data")
    _keys(obj, "", {"user_id"})
    return _id(obj["user_id"], "user_id")


def parse_token_body(body: Any) -> str:
    """``{"token": "..."}`` (article/verify, README §5.1)."""
    obj = _obj(body, "body")
    _keys(obj, "", {"token"})
    return _str(obj["token"], "token")


Period = tuple[date, date] | str  # (first day, last day) or TODAY | YESTERDAY | L7D | L30D


@dataclass(frozen=True, slots=True)
class GetListQuery:
    offset: int
    count: int
    tag_name: str | None
    period: Period | None
    is_follower: bool | None


def parse_getlist_query(data: Any) -> GetListQuery:
    """``GET /v3.0/oa/user/getlist?data={offset, count, tag_name?, last_interaction_period?,
    is_follower?}`` (README §3.5; fixture user_getlist.request.json sends is_follower as the
    string "true", so both a JSON boolean and "true"/"false" are accepted)."""
    obj = _obj(data, "data")
    _keys(obj, "", {"offset", "count"}, {"tag_name", "last_interaction_period", "is_follower"})
    offset = _int(obj["offset"], "offset")
    count = _int(obj["count"], "count", minimum=1)
    if count > GETLIST_COUNT_MAX or offset > GETLIST_OFFSET_MAX:
        raise too_long()
    tag = _str(obj["tag_name"], "tag_name") if "tag_name" in obj else None
    period: Period | None = None
    if "last_interaction_period" in obj:
        raw = _str(obj["last_interaction_period"], "last_interaction_period")
        if raw in {"TODAY", "YESTERDAY", "L7D", "L30D"}:
            period = raw
        elif m := _PERIOD_RANGE.fullmatch(raw):
            try:
                period = (
                    date(int(m[1]), int(m[2]), int(m[3])),
                    date(int(m[4]), int(m[5]), int(m[6])),
                )
            except ValueError:
                raise invalid("last_interaction_period") from None
            if period[0] > period[1]:
                raise invalid("last_interaction_period")
        else:
            raise invalid("last_interaction_period")
    follower: bool | None = None
    if "is_follower" in obj:
        raw_f = obj["is_follower"]
        if isinstance(raw_f, bool):
            follower = raw_f
        elif raw_f in {"true", "false"}:
            follower = raw_f == "true"
        else:
            raise invalid("is_follower")
    return GetListQuery(offset, count, tag, period, follower)


def parse_conversation_query(data: Any) -> tuple[str, int, int]:
    """``GET /v2.0/oa/conversation?data={user_id, offset, count}``, count ≤ 10 (README §3.5).

    A v2 endpoint: the official v2 SDKs pass ``user_id`` as a number, so a non-negative JSON
    integer is accepted as well as a digit string.
    """
    obj = _obj(data, "data")
    _keys(obj, "", {"user_id", "offset", "count"})
    raw = obj["user_id"]
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        raw = str(raw)
    user_id = _id(raw, "user_id")
    offset = _int(obj["offset"], "offset")
    count = _int(obj["count"], "count", minimum=1)
    if count > CONVERSATION_COUNT_MAX:
        raise too_long()
    return user_id, offset, count


@dataclass(frozen=True, slots=True)
class ArticleDraft:
    kind: Literal["normal", "video"]
    title: str
    status: Literal["show", "hide"]
    raw: dict[str, Any]


def _show_hide(obj: dict[str, Any], key: str, path: str) -> Literal["show", "hide"]:
    value = obj.get(key, "hide")
    if value == "show":
        return "show"
    if value == "hide":
        return "hide"
    raise invalid(path)


def _article_body_item(item: Any, path: str) -> None:
    el = _obj(item, path)
    kind = el.get("type")
    if kind == "text":
        _keys(el, path, {"type", "content"})
        _str(el["content"], f"{path}.content")
    elif kind == "image":
        _keys(el, path, {"type", "url"}, {"caption"})
        _url(el["url"], f"{path}.url")
        if "caption" in el:
            _str(el["caption"], f"{path}.caption", allow_empty=True)
    elif kind == "video":
        if "video_id" in el:
            _keys(el, path, {"type", "video_id"}, {"thumb"})
            _str(el["video_id"], f"{path}.video_id")
        else:
            _keys(el, path, {"type", "url"}, {"thumb"})
            _url(el["url"], f"{path}.url")
    else:
        raise invalid(f"{path}.type")


def parse_article(body: Any) -> ArticleDraft:
    """``POST /v2.0/article/create`` (README §5.1; fixture article_create.request.json).

    ``type: normal`` needs title, author, cover{cover_type: photo, photo_url, status},
    description and a non-empty body of text/image/video items; ``type: video`` needs title,
    description, video_id and avatar. ``status``/``comment`` are show|hide, status defaulting to
    hide. Limits: title 150, author 50, description 300 characters (-210 beyond).
    """
    obj = _obj(body, "body")
    kind = obj.get("type")
    if kind == "normal":
        _keys(
            obj,
            "",
            {"type", "title", "author", "cover", "description", "body"},
            {"status", "comment"},
        )
        title = _limited(obj["title"], "title", ARTICLE_TITLE_MAX)
        _limited(obj["author"], "author", ARTICLE_AUTHOR_MAX)
        _limited(obj["description"], "description", ARTICLE_DESCRIPTION_MAX)
        cover = _obj(obj["cover"], "cover")
        _keys(cover, "cover", {"cover_type", "photo_url", "status"})
        if cover["cover_type"] != "photo":
            raise invalid("cover.cover_type")
        _url(cover["photo_url"], "cover.photo_url")
        _show_hide(cover, "status", "cover.status")
        items = obj["body"]
        if not isinstance(items, list) or not items:
            raise invalid("body")
        for i, item in enumerate(items):
            _article_body_item(item, f"body[{i}]")
    elif kind == "video":
        _keys(
            obj, "", {"type", "title", "description", "video_id", "avatar"}, {"status", "comment"}
        )
        title = _limited(obj["title"], "title", ARTICLE_TITLE_MAX)
        _limited(obj["description"], "description", ARTICLE_DESCRIPTION_MAX)
        _str(obj["video_id"], "video_id")
        _url(obj["avatar"], "avatar")
    else:
        raise invalid("type")
    status = _show_hide(obj, "status", "status")
    _show_hide(obj, "comment", "comment")
    return ArticleDraft(kind=kind, title=title, status=status, raw=obj)
