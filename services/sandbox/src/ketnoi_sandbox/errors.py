"""Zalo error codes and messages as the sandbox returns them.

OA Open API errors (README §3.6) arrive with **HTTP 200** and the body ``{"error", "message"}``;
messages are spelt as Zalo spells them ("Offical", "registed"). Clients must match on the code.

OAuth v4 errors (README §3.6, last paragraph) are in the ``-14xxx`` family with ``error_name``,
``error_reason`` and ``ref_doc``. Only -14002 and -14003 are documented; the README states that
no separate official code exists for an expired or invalid refresh token, so the other values
below are **sandbox choices** (clients must treat any non-zero refresh answer as terminal, §4.4).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["OA_MESSAGES", "OAuthError", "ZaloError", "invalid", "oauth_body", "too_long"]

#: README §3.6 (official table as quoted), plus -242 (§3.1).
OA_MESSAGES: Final[dict[int, str]] = {
    -32: "Your application reached limit call api",
    -100: "attachment_id was expired",
    -200: "Send message failed",
    -201: "Parameter is invalid!",
    -204: "Offical Account is disable",
    -205: "Offical Account is not exist",
    -209: "Not supported this api",
    -210: "Parameter exceeds allowable limit",
    -211: "Out of quota",
    -212: "App has not registed this api",
    -213: "User has not followed OA",
    -214: "Article is being processed",
    -216: "Access token is invalid",
    -217: "User has blocked invitation from OA",
    -218: "Out of quota receive",
    -219: "App is removed or disabled",
    -220: "access_token is expired or removed",
    -221: "The OA needs to be verified to use this feature",
    -223: "Official Account has not authorized this API",
    -224: "The OA needs to upgrade OA Tier Package",
    -227: "User is banned or inactive for more than 45 days",
    -230: "User has not interacted with the OA in the past 7 days",
    -232: "User has not interacted, or the last interaction expired",
    -233: "message type is invalid or not support",
    -234: "This message cannot be sent at night (10PM–6AM)",
    -235: "This API does not support this type of OA",
    -240: "MessageV2 API has been shut down, please switch to MessageV3",
    -242: "Invalid appsecret_proof",
    -244: "User has restricted this message type from your OA",
    -248: "Violates platform standards",
    -320: "Zalo Cloud Account not linked",
    -321: "Zalo Cloud Account out of money",
}


class ZaloError(Exception):
    """An OA API refusal: answered with HTTP 200 and ``{"error": code, "message": message}``."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or OA_MESSAGES.get(code, "Unknown error")
        super().__init__(f"{code} {self.message}")

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


def invalid(field: str) -> ZaloError:
    """-201 ``<field> is invalid!``: the Zalo answer to a parameter of the wrong shape (§3.6)."""
    return ZaloError(-201, f"{field} is invalid!")


def too_long() -> ZaloError:
    """-210 "Parameter exceeds allowable limit" (§3.6): over a documented length/size limit."""
    return ZaloError(-210)


#: OAuth v4 codes. README: -14002 "Invalid appId", -14003 "Invalid redirect uri"; the rest are
#: sandbox choices within the documented -14xxx family.
OAUTH_INVALID_PARAMETER: Final = -14001
OAUTH_INVALID_APP_ID: Final = -14002
OAUTH_INVALID_REDIRECT_URI: Final = -14003
OAUTH_INVALID_SECRET_KEY: Final = -14004
OAUTH_INVALID_CODE: Final = -14005
OAUTH_INVALID_CODE_VERIFIER: Final = -14006
OAUTH_INVALID_REFRESH_TOKEN: Final = -14014

_OAUTH_NAMES: Final[dict[int, str]] = {
    OAUTH_INVALID_PARAMETER: "Invalid parameter",
    OAUTH_INVALID_APP_ID: "Invalid appId",
    OAUTH_INVALID_REDIRECT_URI: "Invalid redirect uri",
    OAUTH_INVALID_SECRET_KEY: "Invalid secret key",
    OAUTH_INVALID_CODE: "Invalid authorization code",
    OAUTH_INVALID_CODE_VERIFIER: "Invalid code verifier",
    OAUTH_INVALID_REFRESH_TOKEN: "Invalid refresh token",
}
REF_DOC: Final = (
    "https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new"
)


class OAuthError(Exception):
    """A refusal from ``/v4/oa/access_token`` (HTTP 200, ``-14xxx`` body)."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code} {reason}")

    def body(self) -> dict[str, Any]:
        return oauth_body(self.code, self.reason)


def oauth_body(code: int, reason: str) -> dict[str, Any]:
    return {
        "error": code,
        "error_name": _OAUTH_NAMES.get(code, "Invalid parameter"),
        "error_reason": reason,
        "error_description": reason,
        "ref_doc": REF_DOC,
    }
