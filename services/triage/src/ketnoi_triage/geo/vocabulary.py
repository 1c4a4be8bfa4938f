"""Words around place names: unit prefixes, words that mean "not a unit here", common phrases.

These are ordinary Vietnamese words, not lists of places; every place name comes from the
generated gazetteer data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ketnoi_shared.text import fold

from .tokens import tokenize

__all__ = [
    "AT_WORD",
    "CLASS_DISTRICT",
    "CLASS_PROVINCE",
    "CLASS_WARD",
    "COMMON_PHRASES",
    "COMMON_SYLLABLES",
    "FROM_WORD",
    "HAMLET_WORDS",
    "HOME_WORDS",
    "LOCATIVE_PAIRS",
    "LOCATIVE_WORDS",
    "MIDDLE_NAMES",
    "MOVE_WORD",
    "OLD_MARKER",
    "PLATE_WORD",
    "PREFIXES",
    "RETURN_WORD",
    "SUPPRESSORS",
    "SURNAMES",
    "WEAK_PLAIN_PREFIXES",
    "Prefix",
    "WordSet",
]

CLASS_WARD: Final = 1
CLASS_DISTRICT: Final = 2
CLASS_PROVINCE: Final = 4


@dataclass(frozen=True, slots=True)
class Prefix:
    """A word written before a unit name: its folded tokens, accented spelling (None for
    abbreviations), which kinds of units it introduces and the unit type it names."""

    tokens: tuple[str, ...]
    accented: tuple[str, ...] | None
    classes: int
    unit_type: str | None
    before_number_only: bool = False


def _prefix(
    written: str, classes: int, unit_type: str | None, *, number_only: bool = False
) -> Prefix:
    lower = tuple(tokenize(written.lower()))
    folded = tuple(tokenize(fold(written.lower())))
    accented = lower if lower != folded else None
    return Prefix(folded, accented, classes, unit_type, number_only)


_W, _D, _P = CLASS_WARD, CLASS_DISTRICT, CLASS_PROVINCE

PREFIXES: Final[tuple[Prefix, ...]] = (
    _prefix("phường", _W, "Phường"),
    _prefix("p", _W, "Phường"),
    _prefix("f", _W, "Phường", number_only=True),
    _prefix("ward", _W, "Phường"),
    _prefix("xã", _W, "Xã"),
    _prefix("x", _W, "Xã"),
    _prefix("commune", _W, "Xã"),
    _prefix("thị trấn", _W, "Thị trấn"),
    _prefix("tt", _W, "Thị trấn"),
    _prefix("đặc khu", _W, "Đặc khu"),
    _prefix("đảo", _W, "Đặc khu"),
    _prefix("quận", _D, "Quận"),
    _prefix("q", _D, "Quận"),
    _prefix("district", _D, None),
    _prefix("huyện", _D, "Huyện"),
    _prefix("huyện đảo", _D, "Huyện"),
    _prefix("h", _D, "Huyện"),
    _prefix("thị xã", _D, "Thị xã"),
    _prefix("tx", _D, "Thị xã"),
    _prefix("thành phố", _D | _P, "Thành phố"),
    _prefix("tp", _D | _P, "Thành phố"),
    _prefix("city", _D | _P, "Thành phố"),
    _prefix("tỉnh", _P, "Tỉnh"),
    _prefix("province", _P, "Tỉnh"),
)


# folded word → (accented spellings that count, whether the plain spelling counts)
WordSet = dict[str, tuple[frozenset[str], bool]]


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _words(*groups: str) -> WordSet:
    """folded word → (accented spellings that count, whether the plain spelling counts).

    Words are given space-separated; a trailing * means the word also counts typed without
    diacritics (it is rarely anything else then).
    """
    out: WordSet = {}
    for item in (w for group in groups for w in group.split()):
        plain_ok = item.endswith("*")
        word = item.rstrip("*")
        key = fold(word)
        forms, was_plain = out.get(key, (frozenset(), False))
        out[key] = (forms | {word}, was_plain or plain_ok)
    return out


# A name right after these is a street, a hamlet or a person, not a unit: "đường Trần Phú",
# "thôn Tân Lập", "chị Xuân Hương". A trailing * means the word also counts typed without
# diacritics (it is rarely anything else).
SUPPRESSORS: Final = _words(
    "đường* phố* hẻm* ngõ* ngách* kiệt* thôn* ấp* tổ xóm* buôn* bon* bản làng sóc* tdp* kp*",
    "ql* lộ hxh* anh* chị em* ông* bà cô chú* bác* cháu* bé thằng* tên bạn cậu* dì mợ thím",
    "vợ* chồng* con nàng* cụ mr* ms*",
)

# "về Đà Lạt" (going home), "từ Sài Gòn" (coming from), "lên Đà Lạt" (travelling) and "tôi ở
# Bảo Lộc" (where the writer lives) rarely name the place of the incident when another place
# is also named.
RETURN_WORD: Final = _words("về*", "từ*")
MOVE_WORD: Final = _words("lên*", "xuống*", "ra*", "đi*", "sang*")
FROM_WORD: Final = _words("từ*")
HOME_WORDS: Final = _words("tôi*", "em*", "e*", "mình*", "tui*", "tao*", "t*", "sống*", "quê*")
AT_WORD: Final = _words("ở*")
# "biển Sài Gòn": a licence plate, not a place.
PLATE_WORD: Final = _words("biển*")
# "Lộc An cũ": the name is a pre-2025 one.
OLD_MARKER: Final = _words("cũ*")
# "ở Phú Quý", "tại Hòa Bình": before a capitalised name, a place rather than a phrase. So
# are a market, an industrial park ("KCN") or "near" before it: "chợ Nam Ban", "gần Lộc An",
# and "in"/"at"/"near" in English ("in Duc Long"). "chợ" counts only with its diacritics:
# "cho" is "for" ("đưa tiền cho Đức Long").
LOCATIVE_WORDS: Final = _words("ở*", "tại*", "khu*", "chợ", "gần*", "kcn*", "in*", "at*", "near*")
# Two-word heads doing the same: a crossroads ("ngã tư Nam Ban", "ngã 4 Phú Long"), an
# industrial park ("khu công nghiệp Phú Hội"), a market after "ở" ("o cho Nam Ban"). Not a
# bus station: "bến xe Đức Long" is a bus company's station in Bảo Lộc, not in the old ward
# of Đức Long.
LOCATIVE_PAIRS: Final[tuple[tuple[WordSet, WordSet], ...]] = (
    (_words("ngã*"), _words("tư* ba* năm* sáu* bảy* 3* 4* 5* 6* 7*")),
    (_words("công*"), _words("nghiệp*")),
    # "o cho Nam Ban", "cong cho Nam Ban": after "ở"/"tại"/"gần"/"cổng", a plain "cho" is
    # "chợ".
    (_words("ở* tại* gần* cổng*"), _words("chợ*")),
    # a road passing a place ("QL20 đoạn qua Xuân Lộc"), a wholesale market ("chợ đầu mối
    # Long Khánh")
    (_words("đoạn*"), _words("qua*")),
    (_words("đầu*"), _words("mối*")),
)
# "thôn 4 Lộc An", "tổ 12 B'Lao": a hamlet number is followed by its commune's name.
HAMLET_WORDS: Final = _words("thôn* ấp* tổ* xóm* khu* kp* tdp* buôn* bon* bản đội*")
# Prefix words that, typed without diacritics, are more often ordinary words ("xa" far,
# "quan" official, "tinh" to count) — not enough to make a common phrase a place.
WEAK_PLAIN_PREFIXES: Final = frozenset({"xa", "quan", "tinh"})

# Ordinary words and phrases that are also unit names; without a unit prefix they are read
# as words. Each is given with its usual spelling: a text that spells the phrase the same way
# is read as the phrase, one that spells it otherwise ("La Gi" versus "là gì") as a place.
_PHRASES: Final = """
hòa bình, bình thường, an toàn, tân tiến, phú quý, bình an, an bình, bình yên, yên bình,
thống nhất, đoàn kết, độc lập, tự do, hạnh phúc, thắng lợi, chiến thắng, quyết thắng,
quyết tiến, quyết chiến, tiến bộ, tiên phong, thành công, vinh quang, quang vinh, thịnh vượng,
phú cường, an khang, an lạc, bình minh, thanh bình, thái bình, hòa thuận, hòa hợp, đồng tâm,
đồng tiến, hợp tác, thuận lợi, thuận hòa, an ninh, trung tâm, trung thành, văn minh, văn hóa,
hưng thịnh, phát triển, tương lai, thanh xuân, mùa xuân, tân thời, tân binh, quang trung,
hùng vương, trưng vương, hai bà trưng, điện biên phủ, cách mạng tháng tám, là gì, đi về,
hòa hảo, bình đẳng, công bằng, dân chủ, trường sơn, thanh niên, chợ mới, nông trường, cửa nam,
cửa bắc, thanh long, nam bộ, bắc bộ, trung bộ, miền nam, miền bắc, miền trung, lộc phát,
phát lộc, tài lộc, phúc lộc, rừng thông, ban công, liên quan, biên giới, thể dục, kiến thiết,
đồng ý, cầu đất, vĩnh cửu, tiền hải, tam nông, bình giang, kim sơn, gia đình, đồng hồ,
vẫn còn, tiến tới, cái răng
"""
COMMON_PHRASES: Final[dict[str, str]] = {
    fold(p.strip()): p.strip() for p in _PHRASES.split(",") if p.strip()
}

# First syllables of person names: "Lê Lợi", "Trần Phú" are streets and people as often as
# wards, so such names need a unit prefix or a supporting district unless they are unique.
SURNAMES: Final = _wordset(
    "nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly dinh trinh "
    "truong mai luu doan chu ton quach kieu"
)
# Second syllables that make a three-syllable surname-first name a person's ("Lý Thường Kiệt").
MIDDLE_NAMES: Final = _wordset(
    "van thi huu dinh quoc cong duc minh ngoc xuan hong boi chu thuong hung tien thanh "
    "trong khac duy dang chi tat"
)

# Very frequent words, typed without diacritics: a name made only of these ("la da": "là đá"
# or La Dạ?) needs a unit prefix, "cũ", a district or "ở" before it capitalised to count.
COMMON_SYLLABLES: Final = _wordset(
    "la da co ko khong di o toi em anh bi roi nay thi ma va cua cho de duoc dc nha mot hai "
    "ba bon gi sao nhu the lam an con ra vao len xuong ve tu den trong tren duoi voi cung "
    "nhung cac qua lai dang se vua moi chua het hom ngay dem gan xa mat xe no tui minh ai "
    "day do kia nao nua gio hay noi biet thay nghe xem goi cai chi ban cu vi van ky nga nam "
    "binh thuy tam sau bay hoa gia nhan dung bao tan ta"
)
