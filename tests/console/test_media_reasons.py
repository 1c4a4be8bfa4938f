"""Officers read why an attachment was not kept in Vietnamese, not as the worker's code."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from ketnoi_console.app import MEDIA_ERROR_VI, _templates


def _render(media: SimpleNamespace | None, kind: str = "image") -> str:
    view = SimpleNamespace(
        label="Người báo tin 1",
        case=SimpleNamespace(id="c1", location=None),
        timeline=[
            SimpleNamespace(
                who="citizen",
                at=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
                text="Có người bán ma túy",
                attachments=[SimpleNamespace(type=kind, location=None, media=media)],
            )
        ],
    )
    return _templates().get_template("_timeline.html").render(view=view)


@pytest.mark.parametrize(
    ("error", "kind", "expected"),
    [
        ("expired", "image", "Không lưu được ảnh: đường dẫn của Zalo đã hết hạn."),
        ("timeout", "video", "Không lưu được video: máy chủ không phản hồi, đã thử lại nhiều lần."),
        ("type_not_allowed", "file", "Không lưu được tệp: định dạng tệp không được phép."),
        ("something_new", "image", "Không lưu được ảnh: lỗi khi tải về."),
    ],
)
def test_an_attachment_not_kept_says_why_in_vietnamese(error: str, kind: str, expected: str):
    page = _render(SimpleNamespace(status="failed", error=error, kind=kind), kind)
    assert expected in page
    assert error not in page


def test_a_pending_attachment_is_shown_as_being_fetched():
    assert "Đang tải ảnh về máy chủ…" in _render(None)


def test_every_reason_of_the_media_worker_has_a_vietnamese_text():
    reasons = {
        "expired",
        "not_found",
        "too_large",
        "type_not_allowed",
        "corrupt",
        "too_many_pixels",
        "empty",
        "bad_url",
        "host_not_allowed",
        "redirects",
        "timeout",
        "deadline",
        "connection",
        "http_5xx",
        "http_429",
        "http_408",
        "abandoned",
        "unreadable",
    }
    assert reasons <= MEDIA_ERROR_VI.keys()
