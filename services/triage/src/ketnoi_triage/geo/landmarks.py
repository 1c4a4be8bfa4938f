"""Well-known places that citizens and visitors name instead of a ward: "chợ Đà Lạt", "hồ
Tuyền Lâm", "quảng trường Lâm Viên" (which is not in Phường Lâm Viên - Đà Lạt).

Only places whose pre-2025 ward is certain are listed; the comment gives that ward, and the
current unit is what the official 2025 conversion made of it (Đà Lạt's Phường 1, 2, 3, 4 and
10 → Xuân Hương - Đà Lạt; 8, 9 and 12 → Lâm Viên - Đà Lạt; 11 → Xuân Trường - Đà Lạt). A
place that straddles wards or whose ward is in doubt (the railway station) is left out: no
answer sends the case to the province's desk, a wrong one to the wrong commune.

Names are matched on the folded tokens, so they count without diacritics; every entry is at
least two words, so that a single common word never fires alone. In a message written with
diacritics the first word must carry the landmark's own: "cho Đà Lạt" is "for Đà Lạt", and
"họ Xuân Hương" is a family name, not the lake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from ketnoi_shared.text import NormalizedText, fold

from .tokens import split_tone, tokenize, word_runs

__all__ = ["LANDMARKS", "Landmark", "LandmarkIndex"]

_XUAN_HUONG: Final = "Phường Xuân Hương - Đà Lạt"
_LAM_VIEN: Final = "Phường Lâm Viên - Đà Lạt"
_XUAN_TRUONG: Final = "Phường Xuân Trường - Đà Lạt"

#: current unit name → the ways its landmarks are written
LANDMARKS: Final[dict[str, tuple[str, ...]]] = {
    _XUAN_HUONG: (
        # Phường 1: the market, the night market, the lake's west shore
        "chợ Đà Lạt",
        "chợ Dalat",
        "chợ đêm Đà Lạt",
        "chợ âm phủ Đà Lạt",
        "Dalat market",
        "Da Lat market",
        "Dalat night market",
        "Da Lat night market",
        "night market in Da Lat",
        "night market in Dalat",
        # the town centre around the Hòa Bình cinema (Phường 1); named with the city, since
        # other places have a "khu Hòa Bình" too
        "khu Hòa Bình Đà Lạt",
        "khu Hòa Bình Dalat",
        "hồ Xuân Hương",
        "Xuan Huong lake",
        # Phường 10
        "quảng trường Lâm Viên",
        "Lam Vien square",
        # Phường 4
        "dinh Bảo Đại",
        "Bao Dai palace",
        "Crazy House",
        "biệt thự Hằng Nga",
        # Phường 3
        "hồ Tuyền Lâm",
        "Tuyen Lam lake",
        "thiền viện Trúc Lâm",
        "đồi Robin",
        "thác Datanla",
        "thác Đatanla",
        "Datanla waterfall",
        "bến xe liên tỉnh Đà Lạt",
    ),
    _LAM_VIEN: (
        # Phường 8
        "thung lũng Tình Yêu",
        "Valley of Love",
        "vườn hoa thành phố Đà Lạt",
        "vườn hoa Đà Lạt",
        # the university as a place one is near ("sinh viên đại học Đà Lạt" says who, not
        # where)
        "gần đại học Đà Lạt",
        "gần trường đại học Đà Lạt",
        "gần ĐH Đà Lạt",
        "gần ĐH Dalat",
        # Phường 12
        "hồ Than Thở",
    ),
    _XUAN_TRUONG: (
        # Phường 11
        "Trại Mát",
        "chùa Linh Phước",
        "chùa Ve Chai",
    ),
}


class Landmark(NamedTuple):
    start: int  # first token
    end: int
    unit_name: str
    name: str  # as the table spells it
    written: str | None  # as the message writes it (None when its words do not align)


class LandmarkIndex:
    """The landmarks of :data:`LANDMARKS` as token sequences, found in one pass."""

    def __init__(self, table: dict[str, Iterable[str]] = LANDMARKS) -> None:
        # first folded token → (folded tokens, the first word as spelled, unit name, name)
        self._by_first: dict[str, list[tuple[tuple[str, ...], str, str, str]]] = {}
        for unit_name, names in table.items():
            for name in names:
                toks = tuple(tokenize(fold(name.lower())))
                if len(toks) < 2:
                    raise ValueError(f"a landmark needs two words or more: {name!r}")
                head = word_runs(name.lower())[0]
                self._by_first.setdefault(toks[0], []).append((toks, head, unit_name, name))
        for options in self._by_first.values():
            options.sort(key=lambda o: -len(o[0]))  # the longest name first

    def find(self, norm: NormalizedText, folded: Sequence[str]) -> Landmark | None:
        """The first landmark named in a message, given with its folded tokens."""
        written: list[str] | None = None  # the words as written: read once, and only here
        for i, tok in enumerate(folded):
            options = self._by_first.get(tok)
            if options is None:
                continue
            for toks, head, unit_name, name in options:
                end = i + len(toks)
                if tuple(folded[i:end]) != toks:
                    continue
                if written is None:
                    written = word_runs(norm.lower)
                aligned = len(written) == len(folded)
                accented = norm.lower != norm.folded
                if aligned and accented and split_tone(written[i]) != split_tone(head):
                    continue  # "cho Đà Lạt": the head word spelled as another word
                span = " ".join(written[i:end]) if aligned else None
                return Landmark(i, end, unit_name, name, span)
        return None
