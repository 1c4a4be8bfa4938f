"""The "Công vụ" knowledge base and its retrieval: coverage, quality on the labelled citizen
questions, teencode and diacritics, menu queries."""

from __future__ import annotations

import pytest

from ketnoi_news.evaluate import evaluate, load_questions
from ketnoi_news.kb import KnowledgeBase
from ketnoi_news.retrieval import analyse
from ketnoi_news.service import NewsService
from ketnoi_shared.queries import Query, classify_query

REQUIRED = {
    "thuong_tru",
    "tam_tru",
    "tam_vang",
    "luu_tru",
    "can_cuoc_cap_moi",
    "can_cuoc_cap_doi",
    "can_cuoc_cap_lai",
    "vneid_muc1",
    "vneid_muc2",
    "dang_ky_xe",
    "ho_chieu",
    "ly_lich_tu_phap",
    "mat_giay_to",
    "to_giac",
    "phan_anh",
    "lien_he",
}


def test_the_base_covers_the_required_procedures_with_every_field():
    kb = KnowledgeBase.load()
    assert set(kb.by_id) >= REQUIRED
    for entry in kb.entries:
        assert entry.title and entry.summary and entry.where and entry.reviewed
        if entry.menu is None:
            assert entry.steps and entry.documents and entry.online.startswith("https://")
        text = entry.render(unit_name="Công an phường Xuân Hương - Đà Lạt")
        assert len(text) <= 2000, entry.id  # one Zalo message
        assert "rà soát ngày" in text


def test_retrieval_quality_on_the_labelled_citizen_questions(news_service: NewsService):
    questions = load_questions()
    assert sum(q["id"] is not None for q in questions) >= 150
    report = evaluate(news_service.retriever, questions)
    print("\nknowledge base:", report.summary())
    assert report.top1_accuracy >= 0.85
    assert report.fallback_rate <= 0.15
    assert report.answered_accuracy >= 0.95
    assert report.out_of_scope_answered <= 1


@pytest.mark.parametrize(
    "question",
    ["lam cccd mat bao lau", "làm căn cước mất bao lâu", "lm cccd mất bn lâu v ad"],
)
def test_the_same_question_with_or_without_diacritics_and_teencode(
    news_service: NewsService, question: str
):
    match, text = news_service.answer(question)
    assert match.confident
    assert match.best is not None and match.best.entry_id.startswith("can_cuoc")
    assert "7 ngày làm việc" in text


def test_a_question_outside_the_base_goes_to_officers(news_service: NewsService):
    match, text = news_service.answer("thủ tục ly hôn thuận tình")
    assert not match.confident
    assert "cán bộ" in text


def test_analyser_folds_expands_and_pairs():
    assert analyse("Đăng ký TẠM TRÚ ạ") == analyse("dang ky tam tru a")
    terms = analyse("ko co cccd")
    assert "can_cuoc" in terms and "khong" in terms


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("#tin_tuc", Query.NEWS),
        ("tin tức", Query.NEWS),
        ("tin tuc", Query.NEWS),
        ("Tin mới", Query.NEWS),
        ("có tin gì mới không ạ", Query.NEWS),
        ("#cong_vu", Query.PROCEDURES),
        ("#phan_anh", Query.HOW_TO_REPORT),
        ("#gui_phan_anh", Query.HOW_TO_REPORT),
        ("#lien_he", Query.CONTACTS),
        ("tin tức về vụ trộm hôm qua ở chợ Đà Lạt", None),
        ("lam cccd mat bao lau", None),
        ("#khong_co", None),
        (None, None),
    ],
)
def test_menu_queries(text: str | None, query: Query | None):
    assert classify_query(text) is query
