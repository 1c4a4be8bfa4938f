"""The shared Vietnamese normalisation."""

from __future__ import annotations

import unicodedata

import pytest

from ketnoi_shared.text import fold, normalize

SENTENCE = "Có người đang chích hút ở phường Lộc Phát, TP Bảo Lộc"


@pytest.mark.parametrize(
    "variant",
    [
        unicodedata.normalize("NFD", SENTENCE),
        SENTENCE.upper(),
        SENTENCE.replace("chích", "ch\u200bích").replace("Lộc", "L\ufeffộc"),
        SENTENCE.replace("o", "о"),  # Cyrillic o
        SENTENCE.replace("a", "а").replace("c", "с"),  # Cyrillic a and c
        "  " + SENTENCE.replace(" ", "\u00a0 \t") + "\n",
    ],
)
def test_variants_normalise_to_the_same_text(variant: str):
    assert normalize(variant).lower == normalize(SENTENCE).lower
    assert normalize(variant).folded == normalize(SENTENCE).folded


def test_folded_view_removes_diacritics_and_keeps_positions():
    n = normalize("Đà Lạt, đường Trần Hưng Đạo")
    assert n.folded == "da lat, duong tran hung dao"
    assert len(n.folded) == len(n.lower)
    assert n.has_diacritics
    assert fold("Ưu tiên ĐĂK NÔNG") == "Uu tien DAK NONG"


def test_fullwidth_and_controls():
    assert normalize("Ｍａ ｔúｙ\x00!").lower == "ma túy !"
