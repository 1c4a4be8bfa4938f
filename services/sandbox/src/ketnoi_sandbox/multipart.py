"""A small ``multipart/form-data`` reader for the upload endpoints.

The sandbox does not depend on python-multipart (it is not in the workspace); uploads are small
(≤ 5 MB, README §3.5), so the whole body is split in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

__all__ = ["MultipartError", "Part", "parse_multipart"]


class MultipartError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _header_params(name: str, value: str) -> Message:
    msg = Message()
    msg[name] = value
    return msg


def boundary_of(content_type: str) -> str:
    msg = _header_params("content-type", content_type)
    if msg.get_content_type() != "multipart/form-data":
        raise MultipartError("not multipart/form-data")
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("no boundary")
    return boundary


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """The parts of a ``multipart/form-data`` body (RFC 7578), in order."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise MultipartError("no parts")
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if not chunk.startswith(b"\r\n"):
            raise MultipartError("malformed delimiter line")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("part without headers")
        if not data.endswith(b"\r\n"):
            raise MultipartError("part not followed by CRLF")
        data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise MultipartError("part without Content-Disposition")
        msg = _header_params("content-disposition", disposition)
        name = msg.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise MultipartError("part without a name")
        parts.append(
            Part(
                name=name,
                filename=msg.get_filename(),
                content_type=headers.get("content-type"),
                data=data,
            )
        )
    else:
        raise MultipartError("no closing delimiter")
    return parts
