"""One message as the resolver sees it: folded tokens, lazily its accented tokens, the old
districts and provinces it names, and the words around a name."""

from __future__ import annotations

from ketnoi_shared.text import NormalizedText

from .index import KIND_OLDD, KIND_OLDP, KIND_PROV, Entry
from .tokens import separated, split_tone, syllable_compatible, tokenize, word_runs
from .vocabulary import (
    AT_WORD,
    CLASS_DISTRICT,
    CLASS_PROVINCE,
    FROM_WORD,
    HAMLET_WORDS,
    HOME_WORDS,
    LOCATIVE_PAIRS,
    LOCATIVE_WORDS,
    MOVE_WORD,
    OLD_MARKER,
    PLATE_WORD,
    RETURN_WORD,
    SUPPRESSORS,
    Prefix,
    WordSet,
)

__all__ = ["CONTEXT_FAR", "CONTEXT_NEAR", "Hit", "Message"]

# (first token of the name, end, readings, unit prefix or None, first token of the prefix)
Hit = tuple[int, int, list[Entry], Prefix | None, int]

CONTEXT_NEAR = 0.25  # the old district is named right next to the name
CONTEXT_FAR = 0.15  # ... or elsewhere in the message
_NEAR_TOKENS = 5


class Message:
    """A message being resolved. Everything beyond the folded tokens is computed on demand,
    since most mentions are settled without it."""

    __slots__ = (
        "_accented_mode",
        "_context",
        "_hits",
        "_lower",
        "abbreviations",
        "norm",
        "toks",
    )

    def __init__(
        self,
        norm: NormalizedText,
        toks: list[str],
        hits: list[Hit],
        abbreviations: dict[str, frozenset[int]],
    ) -> None:
        self.norm = norm
        self.toks = toks
        self.abbreviations = abbreviations
        self._hits = hits
        self._lower: list[str] | bool | None = False
        self._accented_mode: bool | None = None
        self._context: _Context | None = None

    # -- context ---------------------------------------------------------------------------

    def context(self) -> _Context:
        """Old districts and provinces the message names (checked for diacritics)."""
        if self._context is None:
            self._context = _Context(self, self._hits)
        return self._context

    def district_support(
        self, district: int, start: int, end: int, prefixed: bool
    ) -> tuple[float, int]:
        """Bonus for a reading whose old district the message also names (elsewhere than in
        the name itself), and the end of the mention when it directly follows the name."""
        bonus, follows = 0.0, end
        for s, e in self.context().district(district):
            if s < end and e > start:
                continue  # the name itself ("Di Linh" is also the district)
            if end <= s <= end + _NEAR_TOKENS or start - _NEAR_TOKENS <= s < start:
                bonus = CONTEXT_NEAR
                if s <= end + 1:
                    follows = max(follows, e)
            else:
                bonus = max(bonus, CONTEXT_FAR)
        if not bonus and prefixed:
            after = self._abbreviation_after(district, end)
            if after:
                return CONTEXT_NEAR, after
        return bonus, follows

    def _abbreviation_after(self, district: int, end: int) -> int:
        """ "P.2 BL", "p1 tp.dl": district initials right after a prefixed name; returns the
        end of the abbreviation, 0 if there is none."""
        for k, tok in enumerate(self.toks[end : end + 3]):
            if district in self.abbreviations.get(tok, ()):
                return end + k + 1
        return 0

    def province_named(self, entry: Entry) -> bool:
        """Whether the message also names the (old or current) province of a reading."""
        ctx = self.context()
        if not ctx.has_provinces:
            return False
        new, old = ctx.provinces()
        return entry.province in new or (entry.old_province >= 0 and entry.old_province in old)

    # -- diacritics ------------------------------------------------------------------------

    def lower(self) -> list[str] | None:
        """Tokens with diacritics, aligned with the folded tokens (None if they differ)."""
        if self._lower is False:
            lower = word_runs(self.norm.lower)
            if len(lower) == len(self.toks):
                if "0" in self.norm.folded:  # numbers are compared as the folded tokens
                    lower = [f if f.isdigit() else w for w, f in zip(lower, self.toks, strict=True)]
                self._lower = lower
            else:
                self._lower = None
        return self._lower  # type: ignore[return-value]

    def accented_mode(self) -> bool:
        """Whether the writer types diacritics (then a plain "xa" is "far", not "xã").

        Estimated cheaply: Vietnamese letters with diacritics take two or three bytes in
        UTF-8, so the extra bytes count them; a quarter of the words is the threshold.
        """
        if self._accented_mode is None:
            lower = self.norm.lower
            marked = (len(lower.encode("utf-8")) - len(lower)) / 1.6
            self._accented_mode = marked >= 2 and marked >= 0.25 * len(self.toks)
        return self._accented_mode

    def plain(self, start: int, end: int) -> bool:
        """Whether tokens start..end are written without any diacritics."""
        if self.norm.lower == self.norm.folded:
            return True
        lower = self.lower()
        return lower is None or lower[start:end] == self.toks[start:end]

    def accent_ok(
        self, accented: tuple[str, ...] | None, start: int, end: int, *, lenient: bool = False
    ) -> bool:
        """Whether the name as written agrees with a spelling of the place.

        Missing diacritics are fine in a name written wholly without them; once some of its
        syllables carry diacritics in a text typed with diacritics, a bare syllable must be
        bare in the name too ("ban công" is not "Bản Công"). Spellings whose diacritics are
        unknown (old aliases) only match names written without any, or after a unit prefix
        (``lenient``).
        """
        lower = self.lower() if self.norm.lower != self.norm.folded else None
        written = lower[start:end] if lower is not None else None
        folded = self.toks[start:end]
        if written is None or written == folded:
            return True
        if accented is None or len(written) != len(accented):
            return accented is not None or lenient
        strict = self.accented_mode()
        return all(
            syllable_compatible(w, n) and not (strict and w == f and n != w)
            for w, n, f in zip(written, accented, folded, strict=True)
        )

    def prefix_ok(self, prefix: Prefix, pstart: int) -> bool:
        """A unit prefix as written: an accented prefix word must carry its own diacritics
        or, in a text typed without diacritics, none; a one-letter prefix glued to a number
        is not one ("10h", "5p"), after a spaced number it is ("thôn 2 x.Quảng Hòa")."""
        toks = self.toks
        if (
            len(prefix.tokens[0]) == 1
            and pstart > 0
            and toks[pstart - 1].isdigit()
            and not self._gap_before(pstart)  # glued (or not found), as in "10h"
        ):
            return False
        if prefix.accented is None or self.norm.lower == self.norm.folded:
            return True
        lower = self.lower()
        if lower is None:
            return True
        for k, name in enumerate(prefix.accented):
            written = lower[pstart + k]
            if written == name:
                continue
            if written == toks[pstart + k]:
                if self.accented_mode():
                    return False
            elif split_tone(written) != split_tone(name):
                return False
        return True

    def word_is(self, i: int, words: WordSet) -> bool:
        """Whether token i is one of these words, diacritics considered."""
        if i < 0 or i >= len(self.toks):
            return False
        spec = words.get(self.toks[i])
        if spec is None:
            return False
        forms, plain_ok = spec
        lower = self.lower() if self.norm.lower != self.norm.folded else None
        written = lower[i] if lower is not None else self.toks[i]
        if written == self.toks[i]:
            return plain_ok or written in forms
        return any(split_tone(written) == split_tone(f) for f in forms)

    def reads_as_phrase(self, phrase: tuple[str, ...], start: int, end: int) -> bool:
        """Whether a name that is also a common phrase reads as the phrase here: spelled
        like the phrase, or written without diacritics by someone who omits them."""
        if self.norm.lower == self.norm.folded:
            return True
        lower = self.lower()
        if lower is None:
            return True
        written = lower[start:end]
        if len(written) != len(phrase):
            return False
        if all(split_tone(w) == split_tone(p) for w, p in zip(written, phrase, strict=True)):
            return True
        return written == self.toks[start:end] and not self.accented_mode()

    # -- surroundings ----------------------------------------------------------------------

    def suppressed(self, start: int) -> bool:
        """A bare name after "đường", "thôn", "chị"... is a street, hamlet or person."""
        if start >= 2 and self.toks[start - 2] == "thanh" and self.toks[start - 1] == "pho":
            return False
        return self.word_is(start - 1, SUPPRESSORS)

    def after_hamlet(self, start: int) -> bool:
        """ "thôn 4 Lộc An": a name after a hamlet number is the commune's."""
        return (
            start >= 2 and self.toks[start - 1].isdigit() and self.word_is(start - 2, HAMLET_WORDS)
        )

    def after_locative(self, start: int) -> bool:
        """Whether token ``start`` comes right after "ở"/"tại" or a landmark head ("chợ",
        "ngã tư", "đoạn qua"…, see :data:`LOCATIVE_WORDS` and :data:`LOCATIVE_PAIRS`)."""
        return self.word_is(start - 1, LOCATIVE_WORDS) or any(
            self.word_is(start - 2, first) and self.word_is(start - 1, second)
            for first, second in LOCATIVE_PAIRS
        )

    def locative_title(self, start: int, end: int) -> bool:
        """ "ở Phú Quý", "chợ Nam Ban", "ngã tư Phú Long": a capitalised name right after
        "ở"/"tại" or a landmark is a place."""
        if not self.after_locative(start):
            return False
        written = self.original_span(start, end)
        words = tokenize(written) if written else []
        return len(words) == end - start and all(w[0].isupper() for w in words)

    def old_marker_after(self, end: int) -> bool:
        """ "Lộc An cũ", "Lộc An, Bảo Lâm cũ": the name is given as a pre-2025 one."""
        if "cu" not in self.toks:
            return False
        if self.word_is(end, OLD_MARKER):
            return True
        after = self.context().ends().get(end) if end < len(self.toks) else None
        return after is not None and self.word_is(after, OLD_MARKER)

    def travel_or_plate(self, pstart: int) -> bool:
        """A province named as where one comes from, or on a licence plate."""
        return self.word_is(pstart - 1, FROM_WORD) or self.word_is(pstart - 1, PLATE_WORD)

    def residence_penalty(self, pstart: int) -> float:
        """Lower the rank of "về Đà Lạt" (going home), "từ Sài Gòn" (coming from), "lên Đà
        Lạt" (travelling to) and "tôi ở Bảo Lộc" (where I live)."""
        if self.word_is(pstart - 1, RETURN_WORD):
            return 0.2
        if self.word_is(pstart - 1, MOVE_WORD):
            return 0.1
        if self.word_is(pstart - 1, AT_WORD) and self.word_is(pstart - 2, HOME_WORDS):
            return 0.1
        return 0.0

    # -- text ------------------------------------------------------------------------------

    def casual(self, start: int, end: int) -> bool:
        """Whether tokens start..end are typed plainly: no diacritics and no capitals, as
        ordinary words are ("vu thu 3" for "vụ thứ 3")."""
        if not self.plain(start, end):
            return False
        written = self.original_span(start, end)
        return written is not None and written == written.lower()

    def broken(self, start: int, end: int) -> bool:
        """Whether a name ending in a number took it from the next clause ("xã Cát Tiên, 2
        người" is Cát Tiên, not Cát Tiên 2): punctuation before the number."""
        if end - start < 2 or not self.toks[end - 1].isdigit():
            return False
        gap = self._gap_before(end - 1)
        return gap is not None and any(c in gap for c in ",;!?.")

    def _gap_before(self, i: int) -> str | None:
        """What is written between token i - 1 and token i ("" when they are glued, as in
        "10h"); None when the tokens cannot be found in the text."""
        spans = self._token_spans(i + 1)
        return None if spans is None else self.norm.folded[spans[i - 1][1] : spans[i][0]]

    def original_span(self, start: int, end: int) -> str | None:
        """Tokens start..end as written in the original text; in the normalised text when
        the original cannot be matched (unusual spacing or invisible characters)."""
        spans = self._token_spans(end)
        if spans is None:
            return None
        piece: str = self.norm.lower[spans[start][0] : spans[end - 1][1]]
        original = self.norm.original
        for candidate in (original, _nfc(original)):
            lowered = candidate.lower()
            at = lowered.find(piece)
            if at >= 0 and len(lowered) == len(candidate):
                return str(candidate[at : at + len(piece)])
        return piece

    def _token_spans(self, upto: int) -> list[tuple[int, int]] | None:
        """Character spans of the first ``upto`` tokens in the normalised text, found by
        looking each token up after the previous one."""
        spaced = separated(self.norm.folded)
        spans = []
        pos = 0
        for tok in self.toks[:upto]:
            at = spaced.find(tok, pos)
            if at < 0:
                return None
            pos = at + len(tok)
            spans.append((at, pos))
        return spans


def _nfc(text: str) -> str:
    import unicodedata  # noqa: PLC0415 - rarely needed

    return unicodedata.normalize("NFC", text)


class _Context:
    """The old districts and provinces a message names, and where those mentions end.

    Mentions are collected without looking at diacritics; a mention is checked against the
    diacritics of the text only when a reading asks about it.
    """

    __slots__ = ("_districts", "_ends", "_msg", "_province_hits", "_provinces", "_raw")

    def __init__(self, msg: Message, hits: list[Hit]) -> None:
        self._msg = msg
        self._raw: dict[int, list[tuple[int, int, Entry, int]]] = {}
        self._province_hits: list[tuple[int, int, Entry, int]] = []
        self._districts: dict[int, list[tuple[int, int]]] = {}
        self._provinces: tuple[set[str], set[int]] | None = None
        self._ends: dict[int, int] | None = None
        for start, end, entries, prefix, pstart in hits:
            for entry in entries:
                kind = entry.kind
                if kind == KIND_OLDD:
                    if prefix is None or prefix.classes & CLASS_DISTRICT:
                        item = (start, end, entry, pstart)
                        self._raw.setdefault(entry.ctx_district, []).append(item)
                elif kind >= KIND_PROV and (prefix is None or prefix.classes & CLASS_PROVINCE):
                    self._province_hits.append((start, end, entry, pstart))

    @property
    def empty(self) -> bool:
        """No old district or province is named at all."""
        return not self._raw and not self._province_hits

    @property
    def has_provinces(self) -> bool:
        """Some province is named (diacritics not checked yet)."""
        return bool(self._province_hits)

    def district(self, district: int) -> list[tuple[int, int]]:
        """Spans where an old district is named (with its prefix: "thành phố Đà Lạt")."""
        found = self._districts.get(district)
        if found is None:
            found = [
                (p, e)
                for s, e, entry, p in self._raw.get(district, ())
                if self._msg.accent_ok(entry.accented, s, e)
            ]
            self._districts[district] = found
        return found

    def provinces(self) -> tuple[set[str], set[int]]:
        """Current province codes and old province indexes the message names."""
        if self._provinces is None:
            new: set[str] = set()
            old: set[int] = set()
            for s, e, entry, _p in self._province_hits:
                if self._msg.accent_ok(entry.accented, s, e):
                    new.add(entry.province)
                    if entry.kind == KIND_OLDP:
                        old.add(entry.old_province)
            self._provinces = (new, old)
        return self._provinces

    def ends(self) -> dict[int, int]:
        """Where a district or province mention starting at a token ends."""
        if self._ends is None:
            self._ends = {}
            items = [i for lst in self._raw.values() for i in lst] + self._province_hits
            for s, e, entry, p in items:
                if self._msg.accent_ok(entry.accented, s, e):
                    self._ends[p] = max(e, self._ends.get(p, e))
        return self._ends
