"""What can go wrong talking to Zalo, as the delivery policy needs to know it.

Zalo answers errors with HTTP 200 and ``{"error": <code>, "message": ...}``
(../shared/zalo/README.md §3.1, §3.6); transport failures and 5xx come from the network.
Library and protocol failures are translated here, at the boundary::

    ZaloError
    ├── RetryableError          transport error, timeout, 5xx, -200: try again later
    │   ├── AmbiguousError      the request was written but no answer came: it may have been
    │   │                       delivered; look at the conversation before sending again
    │   └── RateLimitedError    -32 (4,000 requests/minute per app): back off
    ├── NeedsTokenError         -216, -220: refresh the OA's token, then resend once
    ├── OutsideWindowError      -230, -232: no interaction in 7 days; never retried
    └── PermanentError          anything else (-201, -213, -217, -227, -240, -244 …): the
                                request ends, with the reason recorded
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AmbiguousError",
    "NeedsTokenError",
    "OutsideWindowError",
    "PermanentError",
    "RateLimitedError",
    "RetryableError",
    "ZaloError",
]

#: Plain Vietnamese for officers, by Zalo error code.
MESSAGES_VI: Final = {
    -32: "Zalo đang giới hạn tốc độ gửi; tin sẽ được gửi lại sau.",
    -100: "Tệp đính kèm đã hết hạn (quá 7 ngày), cần tải lên lại.",
    -201: "Yêu cầu gửi tin không hợp lệ.",
    -204: "Tài khoản OA đã bị vô hiệu hóa.",
    -205: "Tài khoản OA không tồn tại.",
    -213: "Người dân chưa quan tâm (theo dõi) OA nên không nhận được tin.",
    -216: "Mã truy cập Zalo của OA không hợp lệ; cần làm mới.",
    -217: "Người dân đã chặn tin nhắn từ OA.",
    -220: "Mã truy cập Zalo của OA đã hết hạn; cần làm mới.",
    -227: "Tài khoản Zalo của người dân bị khóa hoặc không hoạt động quá 45 ngày.",
    -230: "Người dân không tương tác với OA trong 7 ngày qua nên không thể gửi tin tư vấn.",
    -232: "Người dân chưa tương tác hoặc lần tương tác gần nhất đã hết hạn.",
    -240: "API gửi tin phiên bản 2 đã ngừng; cần cấu hình lại.",
    -244: "Người dân đã chặn loại tin nhắn này từ OA.",
}


class ZaloError(Exception):
    """A failed call to Zalo; ``code`` is Zalo's error code when Zalo gave one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def message_vi(self) -> str:
        if self.code is not None and self.code in MESSAGES_VI:
            return MESSAGES_VI[self.code]
        return "Gửi tin qua Zalo không thành công."

    @staticmethod
    def from_code(code: int, message: str) -> ZaloError:
        if code == -32:
            return RateLimitedError(message, code=code)
        if code in (-216, -220):
            return NeedsTokenError(message, code=code)
        if code in (-230, -232):
            return OutsideWindowError(message, code=code)
        if code == -200:
            return RetryableError(message, code=code)
        return PermanentError(message, code=code)


class RetryableError(ZaloError):
    """Worth trying again later."""


class AmbiguousError(RetryableError):
    """Sent, but the outcome is unknown (read timeout or connection lost after writing)."""


class UnreachableError(RetryableError):
    """Zalo could not be reached (connection refused or not made in time): nothing was sent."""


class RateLimitedError(RetryableError):
    """Over Zalo's rate limit."""


class NeedsTokenError(ZaloError):
    """The access token is invalid or expired."""


class OutsideWindowError(ZaloError):
    """The citizen has not interacted with the OA in the last 7 days."""


class PermanentError(ZaloError):
    """Trying again will not help."""
