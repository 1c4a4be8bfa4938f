"""What triage says to citizens, in Vietnamese: the acknowledgement of a tip and the short
reply to greetings and thanks."""

from __future__ import annotations

__all__ = ["acknowledgement", "greeting_reply"]

EMERGENCY_NUMBERS = (
    "Nếu đang có nguy hiểm, hãy gọi ngay 113 (Công an), 114 (Cứu hỏa, cứu nạn) hoặc 115 (Cấp cứu)."
)
DISASTER_NUMBERS = (
    "Nếu có cháy, nổ, người mắc kẹt hay đuối nước, hãy gọi ngay 114 (Cứu hỏa, cứu nạn, "
    "cứu hộ); cấp cứu 115; Công an 113."
)
CONFIDENTIAL = "Thông tin và danh tính của bạn được giữ bí mật tuyệt đối."
MENU = (
    "Bạn có thể gửi tin báo kèm hình ảnh, video, vị trí; gõ #cong_vu để hỏi thủ tục, "
    "#tin_tuc để xem tin mới, #lien_he để biết số điện thoại trực ban."
)


def acknowledgement(*, reference: str, unit_name: str, urgency: str, disaster: bool) -> str:
    """The one acknowledgement a tip gets: emergency numbers first when it is urgent."""
    parts = []
    if disaster:
        parts.append(DISASTER_NUMBERS)
    elif urgency == "emergency":
        parts.append(EMERGENCY_NUMBERS)
    parts.append(
        f"{unit_name} đã tiếp nhận tin báo của bạn, mã tin báo: {reference}. "
        "Cán bộ sẽ xem xét và có thể nhắn lại để hỏi thêm."
    )
    parts.append(CONFIDENTIAL)
    parts.append("Bạn có thể gửi thêm hình ảnh, video hoặc vị trí để bổ sung.")
    return " ".join(parts)


def greeting_reply(*, unit_name: str, thanks: bool) -> str:
    opening = "Cảm ơn bạn đã liên hệ" if thanks else "Xin chào, đây là kênh Zalo của"
    return f"{opening} {unit_name}. {MENU} {CONFIDENTIAL}"
