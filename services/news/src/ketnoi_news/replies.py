"""What the news service says to citizens, in Vietnamese: the welcome, the news digest, the
"an officer will answer" message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, Protocol
from zoneinfo import ZoneInfo

__all__ = [
    "fallback_reply",
    "news_digest",
    "status_help",
    "status_reply",
    "status_too_many",
    "welcome",
]

VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
EMERGENCY: Final = "Khẩn cấp hãy gọi ngay 113 (Công an), 114 (Cứu nạn, cứu hộ), 115 (Cấp cứu)."
MENU: Final = (
    "Gõ #tin_tuc để xem tin mới, #cong_vu để hỏi thủ tục (cư trú, căn cước, VNeID, đăng ký xe, "
    "hộ chiếu...), #phan_anh để xem cách gửi tin báo, #lien_he để biết cách liên hệ, "
    "#tra_cuu kèm mã tin báo để xem tình trạng tin báo."
)


class _Item(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def published_at(self) -> datetime | None: ...


def welcome(*, unit_name: str) -> str:
    """The one welcome a citizen gets when following the OA or opening a chat with it."""
    return (
        f"Chào mừng bạn đến với kênh Zalo của {unit_name}. Đây là nơi người dân gửi tin báo về "
        "tội phạm, ma túy, cờ bạc, mất an ninh trật tự, nguy hiểm giao thông; hỏi thủ tục hành "
        "chính và nhận tin cảnh báo từ Công an.\n\n"
        "Cách gửi tin báo: nhắn tin mô tả sự việc (chuyện gì, ở đâu, khi nào), gửi kèm hình ảnh, "
        'video clip và vị trí (bấm dấu "+" rồi chọn Vị trí). Danh tính người gửi và nội dung '
        "tin báo được giữ bí mật tuyệt đối.\n\n"
        f"{EMERGENCY}\n\n{MENU}"
    )


def fallback_reply() -> str:
    return (
        "Cảm ơn bạn đã hỏi. Câu hỏi của bạn đã được chuyển đến cán bộ phụ trách, cán bộ sẽ trả "
        "lời bạn tại đây trong giờ làm việc. Bạn cũng có thể gõ #cong_vu để xem các thủ tục "
        "thường gặp."
    )


def news_digest(items: Sequence[_Item], *, unit_name: str) -> str:
    """The latest items as one text with their links (the consultation API carries text)."""
    if not items:
        return (
            f"Hiện chưa có tin mới từ {unit_name} và các nguồn chính thức. Bạn hãy quay lại sau "
            "nhé. " + MENU
        )
    lines = [f"TIN MỚI TỪ {unit_name.upper()} VÀ CÁC NGUỒN CHÍNH THỨC"]
    for i, item in enumerate(items, 1):
        when = f" ({item.published_at.astimezone(VN):%d/%m})" if item.published_at else ""
        lines.append(f"{i}. {item.title}{when}\n{item.url}")
    lines.append("Gõ #tin_tuc bất cứ lúc nào để xem tin mới nhất.")
    return "\n\n".join(lines)


#: The only states a public status check tells: received, verifying, handled.
_COARSE: Final = {
    "new": "đã được tiếp nhận",
    "acknowledged": "đã được tiếp nhận",
    "verifying": "đang được xác minh",
    "handled": "đã được xem xét, xử lý",
    "closed": "đã được xem xét, xử lý",
    "rejected": "đã được xem xét, xử lý",
}


def status_reply(reference: str, status: str | None) -> str:
    if status is None or status not in _COARSE:
        return (
            f"Không tìm thấy tin báo có mã {reference}. Bạn kiểm tra lại mã trong tin nhắn xác "
            "nhận (dạng LD-XXXXX) và gõ lại: #tra_cuu LD-XXXXX."
        )
    return (
        f"Tin báo mã {reference} {_COARSE[status]}. Vì lý do bảo mật, kết quả chi tiết chỉ "
        "được cán bộ thông báo trực tiếp qua kênh này khi cần."
    )


def status_help() -> str:
    return (
        "Để tra cứu tình trạng tin báo, gõ #tra_cuu kèm mã tin báo trong tin nhắn xác nhận, "
        "ví dụ: #tra_cuu LD-7K2Q9."
    )


def status_too_many() -> str:
    return "Bạn đã tra cứu nhiều lần trong hôm nay. Vui lòng thử lại vào ngày mai."
