"""Tokenisation and syllable comparison for place names.

Place names are matched on the *folded* view of a message (no diacritics, see
:func:`ketnoi_shared.text.normalize`) so that "Đà Lạt", "Da Lat" and "da lat" meet; the
*lower* view (diacritics kept) is then used to reject matches whose diacritics contradict the
name ("nhà Trang" is Trang's house, not Nha Trang). Both views have the same length, so the
same tokeniser yields aligned token lists for both.

Tokens are runs of letters or runs of digits: "p.2" and "p2" both give ``["p", "2"]``, and
numbers lose leading zeros ("phường 01" is "phường 1").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

from ketnoi_shared.text import fold

__all__ = [
    "joined",
    "separated",
    "split_tone",
    "syllable_compatible",
    "tokenize",
    "word_runs",
    "y_variants",
]


def _separators() -> dict[int, str]:
    """Characters that separate tokens: ASCII and common Unicode punctuation and symbols."""
    table = {c: " " for c in range(128) if not chr(c).isalnum()}
    for start, end in (
        (0x00A0, 0x00C0),  # Latin-1 punctuation and symbols
        (0x2000, 0x2070),  # general punctuation (dashes, quotes, ellipsis)
        (0x20A0, 0x20D0),  # currency
        (0x2190, 0x2400),  # arrows, mathematical operators, technical
        (0x2500, 0x27C0),  # box drawing, shapes, dingbats
        (0x3000, 0x3040),  # CJK punctuation
    ):
        table.update(dict.fromkeys(range(start, end), " "))
    table[0x00D7] = " "
    table[0x00F7] = " "
    return table


_SEP: Final = _separators()
# Letters-or-digits runs, for the rare tokens that mix them ("p2", "q10") or carry emoji.
_PARTS: Final = re.compile(r"[^\W\d_]+|\d+")

_TONES: Final = frozenset("\u0300\u0301\u0303\u0309\u0323")
_VOWELS: Final = frozenset("aăâeêioôơuưy")


def _clean_number(token: str) -> str:
    return token.lstrip("0") or "0"


def tokenize(text: str) -> list[str]:
    """Split an already normalised (lower-case) text into letter and digit tokens."""
    out: list[str] = []
    for tok in text.translate(_SEP).split():
        if tok.isalpha():
            out.append(tok)
        elif tok.isdigit() and tok.isascii():
            out.append(_clean_number(tok) if tok[0] == "0" else tok)
        else:
            for part in _PARTS.findall(tok):
                out.append(_clean_number(part) if part[0] == "0" else part)
    return out


def separated(text: str) -> str:
    """The text with every separator turned into a space (same length)."""
    return text.translate(_SEP)


def word_runs(text: str) -> list[str]:
    """Letter and digit runs of a text: :func:`tokenize` without its separator table and
    number clean-up — faster on text with diacritics, and the same tokens for ordinary text
    (callers check the count)."""
    return _PARTS.findall(text)


def joined(tokens: tuple[str, ...]) -> str:
    """The tokens written as one word, as in "dalat" or "baoloc"."""
    return "".join(tokens)


def _y_to_i(base: str) -> str:
    """Spell a final "y" after a consonant as "i" ("Quý" / "Quí", "Kỳ" / "Kì" are one name)."""
    if len(base) >= 2 and base[-1] == "y" and (base[-2] not in _VOWELS or base.endswith("quy")):
        return base[:-1] + "i"
    return base


def y_variants(token: str) -> set[str]:
    """The folded token and its i/y spelling variant."""
    return {token, _y_to_i(token)}


@lru_cache(maxsize=1 << 16)
def split_tone(syllable: str) -> tuple[str, str]:
    """Split a lower-case syllable into its letters (with vowel-quality marks, tone removed,
    final y after a consonant spelled i) and its tone mark ('' for none).

    The position of the tone mark does not matter: "hoà" and "hòa" give ("hoa", grave).
    """
    decomposed = unicodedata.normalize("NFD", syllable)
    tone = "".join(c for c in decomposed if c in _TONES)
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
    return _y_to_i(base), tone


def syllable_compatible(written: str, name: str) -> bool:
    """Whether a syllable as written in a message can be the syllable of a place name.

    Missing diacritics are fine ("lat" for "lạt", "lôc" for "lộc"); a diacritic that is
    present must agree with the name ("nhà" is not "nha", "đi" is not "di").
    """
    if written == name:
        return True
    w_base, w_tone = split_tone(written)
    n_base, n_tone = split_tone(name)
    if w_tone and w_tone != n_tone:
        return False
    if w_base == n_base:
        return True
    if len(w_base) != len(n_base):
        return False
    return all(a == b or a == fold(b) for a, b in zip(w_base, n_base, strict=True))
