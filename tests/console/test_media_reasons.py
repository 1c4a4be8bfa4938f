"""Officers read why an attachment was not kept in Vietnamese, not as the worker's code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

import ketnoi_media
from ketnoi_console.app import MEDIA_ERROR_VI, _templates

MEDIA_SOURCES = Path(ketnoi_media.__file__).parent
#: ``RejectedError("reason"``, ``TransientError("reason"``, ``_Outcome("status", "reason"``.
_REASON = re.compile(r'(?:(?:RejectedError|TransientError)\(\s*|_Outcome\("\w+", )"(\w+)"')


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
    """The reasons are read from the media worker's source, so a new one fails this test
    until officers can read it."""
    source = "\n".join(p.read_text() for p in MEDIA_SOURCES.glob("*.py"))
    reasons = set(_REASON.findall(source))
    assert {"expired", "timeout", "abandoned"} <= reasons, "the pattern still finds them"
    transient_http = {"http_408", "http_429"}  # TransientError(f"http_{status}")
    assert reasons | transient_http <= MEDIA_ERROR_VI.keys()
