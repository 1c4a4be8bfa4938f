"""Vietnamese text normalisation shared by triage, news and the console's search.

Citizens write with and without diacritics, in NFC or NFD (Apple devices), with zero-width
characters, look-alike letters from other scripts, full-width forms, emoji and teencode.
:func:`normalize` gives two views of a text:

* ``lower``: NFC, zero-width and control characters removed, homoglyphs mapped to Latin,
  lower-cased, whitespace collapsed — diacritics kept (they carry meaning: "đá" ≠ "da");
* ``folded``: ``lower`` without diacritics and with "đ" → "d" — what a text typed without
  diacritics looks like, so both spellings meet.

Both views have the same length and character positions, so a match found in ``folded`` can be
read back in ``lower``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = ["NormalizedText", "fold", "normalize", "tokens"]

# Characters that render as nothing and are used (deliberately or not) inside words.
_INVISIBLE: Final = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"),
    None,
)
# Look-alike letters from Cyrillic and Greek that evade keyword matching, and full-width forms
# handled by NFKC-style folding below.
_HOMOGLYPHS: Final[dict[int, str]] = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "һ": "h",
        "ԁ": "d",
        "ɡ": "g",
        "ո": "n",
        "ν": "v",
        "ο": "o",
        "α": "a",
        "ρ": "p",
        "τ": "t",
        "κ": "k",
        "ι": "i",
        "А": "A",
        "В": "B",
        "Е": "E",
        "К": "K",
        "М": "M",
        "Н": "H",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Т": "T",
        "Х": "X",
    }
)
_SPACE_RE: Final = re.compile(r"\s+")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TOKEN_RE: Final = re.compile(r"[0-9a-zà-ỹđ]+", re.IGNORECASE)

# One translation table for the clean-up: invisible characters removed, homoglyphs and
# full-width forms mapped to ASCII.
_CLEAN: Final[dict[int, str | None]] = {
    **_INVISIBLE,
    **_HOMOGLYPHS,
    **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},
    0x3000: " ",
}


def _fold_char(ch: str) -> str:
    if ch in "đĐ":
        return "d" if ch == "đ" else "D"
    decomposed = unicodedata.normalize("NFD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base if len(base) == 1 else ch


# Diacritic folding as a translation table over the Latin blocks Vietnamese uses; combining
# marks left over from NFD input are dropped by NFC first.
_FOLD: Final[dict[int, str]] = {
    c: _fold_char(chr(c))
    for c in (*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00))
    if _fold_char(chr(c)) != chr(c)
}


def fold(text: str) -> str:
    """Remove Vietnamese diacritics (keeps length for precomposed NFC text)."""
    return text.translate(_FOLD)


@dataclass(frozen=True, slots=True)
class NormalizedText:
    original: str
    lower: str
    folded: str

    @property
    def has_diacritics(self) -> bool:
        return self.lower != self.folded


def normalize(text: str) -> NormalizedText:
    cleaned = _CONTROL_RE.sub(" ", unicodedata.normalize("NFC", text).translate(_CLEAN))
    lower = _SPACE_RE.sub(" ", cleaned.lower()).strip()
    # NFC again: lower-casing and mapping can leave decomposable sequences.
    lower = unicodedata.normalize("NFC", lower)
    return NormalizedText(original=text, lower=lower, folded=fold(lower))


def tokens(text: str) -> list[str]:
    """Word tokens of an already normalised text."""
    return _TOKEN_RE.findall(text)
