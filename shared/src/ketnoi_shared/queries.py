"""What a citizen's message asks of the news service: a menu query ("#tin_tuc", "#cong_vu",
"#phan_anh", "#lien_he", as the OA menu sends them) or a short request for news typed by hand
("tin tức", "tin moi", "có tin gì mới không").

Only whole, short messages count: "tin tức về vụ trộm hôm qua ở chợ" is a tip, not a request
for news, and stays with triage.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from ketnoi_shared.text import normalize

__all__ = ["Query", "classify_query", "status_reference"]


class Query(StrEnum):
    NEWS = "tin_tuc"
    PROCEDURES = "cong_vu"
    HOW_TO_REPORT = "phan_anh"
    CONTACTS = "lien_he"
    STATUS = "tra_cuu"  # "#tra_cuu LD-7K2Q9": the coarse state of a tip, by its reference


_HASHTAGS: Final[dict[str, Query]] = {
    "tin_tuc": Query.NEWS,
    "tintuc": Query.NEWS,
    "tin_moi": Query.NEWS,
    "cong_vu": Query.PROCEDURES,
    "congvu": Query.PROCEDURES,
    "thu_tuc": Query.PROCEDURES,
    "phan_anh": Query.HOW_TO_REPORT,
    "phananh": Query.HOW_TO_REPORT,
    "gui_phan_anh": Query.HOW_TO_REPORT,
    "lien_he": Query.CONTACTS,
    "lienhe": Query.CONTACTS,
    "tra_cuu": Query.STATUS,
    "tracuu": Query.STATUS,
}
_HASHTAG_RE: Final = re.compile(r"^#\s*([a-z_]+)$")
_STATUS_RE: Final = re.compile(r"^#?\s*(?:tra_cuu|tracuu|tra cuu)\s+([a-z]{2})\s*([a-z0-9]{5})$")
_POLITE: Final = r"(?:\s+(?:a|ad|admin|nhe|nha|voi|di|oi|khong|ko|k|vay|v|nao))*"
_NEWS_RE: Final = re.compile(
    r"^(?:(?:cho\s+)?(?:toi|minh|em|tui)?\s*(?:xem|xin|doc|hoi)?\s*)"
    r"(?:tin\s+tuc|tin\s+moi|ban\s+tin|tin\s+canh\s+bao|co\s+tin\s+(?:gi|j)\s+moi)"
    r"(?:\s+(?:moi|moi\s+nhat|hom\s+nay|gan\s+day|canh\s+bao))?" + _POLITE + r"$"
)


def classify_query(text: str | None) -> Query | None:
    """The query ``text`` is, or None when it is anything else (a tip, a question...)."""
    if not text or len(text) > 80:
        return None
    folded = re.sub(r"[^0-9a-z_#\s]", " ", normalize(text).folded).strip()
    folded = re.sub(r"\s+", " ", folded)
    if _STATUS_RE.match(folded):
        return Query.STATUS
    tag = _HASHTAG_RE.match(folded)
    if tag:
        return _HASHTAGS.get(tag.group(1))
    if _NEWS_RE.match(folded):
        return Query.NEWS
    return None


def status_reference(text: str | None) -> str | None:
    """The case reference of a status query ("#tra_cuu LD-7K2Q9" → "LD-7K2Q9"), else None."""
    if not text or len(text) > 80:
        return None
    folded = re.sub(r"[^0-9a-z_#\s]", " ", normalize(text).folded).strip()
    match = _STATUS_RE.match(re.sub(r"\s+", " ", folded))
    return f"{match.group(1)}-{match.group(2)}".upper() if match else None
