"""A thin, typed client of the Zalo OA Open API and OAuth v4."""

from .client import SentMessage, TokenPair, ZaloClient, split_text
from .errors import (
    AmbiguousError,
    NeedsTokenError,
    OutsideWindowError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    UnreachableError,
    ZaloError,
)

__all__ = [
    "AmbiguousError",
    "NeedsTokenError",
    "OutsideWindowError",
    "PermanentError",
    "RateLimitedError",
    "RetryableError",
    "SentMessage",
    "TokenPair",
    "UnreachableError",
    "ZaloClient",
    "ZaloError",
    "split_text",
]
