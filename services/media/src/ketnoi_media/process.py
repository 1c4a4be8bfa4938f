"""What is kept of a downloaded attachment: the type from its magic bytes (checked against an
allow-list per kind), the SHA-256 and the sealed bytes of the original, and a display copy.

Images Pillow decodes are re-encoded from their pixels alone, after the EXIF orientation is
applied and the colours converted to sRGB: no EXIF (GPS, camera, time), XMP, IPTC, ICC profile
or comment survives, because nothing but pixels is copied into the new image. Animated GIFs
and WebPs show their first frame. Videos, audio and files are shown as they are: stripping
their metadata needs ffmpeg or format-specific tools (see docs/media.md).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Final

import filetype
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features

from ketnoi_shared.identity import IdentityProtector

from .fetch import RejectedError

__all__ = ["ALLOWED_TYPES", "ORIGINAL_PURPOSE", "Processed", "display_image", "process"]

#: Associated data of sealed originals: they open for no other purpose.
ORIGINAL_PURPOSE: Final = "media_original"

_IMAGES: Final = frozenset(
    {"image/jpeg", "image/png", "image/apng", "image/webp", "image/gif", "image/heic", "image/avif"}
)
_VIDEOS: Final = frozenset(
    {"video/mp4", "video/quicktime", "video/3gpp", "video/webm", "video/x-m4v"}
)
_AUDIO: Final = frozenset(
    {"audio/amr", "audio/aac", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/x-wav", "video/3gpp"}
)
_DOCUMENTS: Final = frozenset(
    {
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/rtf",
        "application/zip",
        "application/x-rar-compressed",
        "application/x-7z-compressed",
    }
)

#: Detected MIME types accepted per attachment kind. Anything filetype cannot identify (HTML,
#: SVG, scripts, plain text) and every executable type is refused.
ALLOWED_TYPES: Final[dict[str, frozenset[str]]] = {
    "image": _IMAGES,
    "gif": frozenset({"image/gif", "image/webp", "image/png", "image/apng", "video/mp4"}),
    "video": _VIDEOS,
    "audio": _AUDIO | {"video/mp4"},
    "file": _DOCUMENTS | _IMAGES | _VIDEOS | _AUDIO,
}

#: Image types re-encoded for display; others (HEIC without a decoder) get no display copy.
_PILLOW: Final = frozenset(
    {"image/jpeg", "image/png", "image/apng", "image/webp", "image/gif"}
    | ({"image/avif"} if features.check("avif") else set())
)
_SRGB: Final = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True, slots=True)
class Processed:
    content_type: str
    size: int
    sha256: str
    sealed_original: bytes
    display: bytes | None
    display_content_type: str | None


def process(
    kind: str,
    data: bytes,
    *,
    protector: IdentityProtector,
    max_pixels: int = 64_000_000,
    max_side: int = 4096,
    jpeg_quality: int = 88,
) -> Processed:
    """Check, hash, seal and make the display copy of ``data`` (CPU-bound: run in a thread).

    Raises :class:`RejectedError` (``type_not_allowed``, ``corrupt``, ``too_many_pixels``)."""
    guess = filetype.guess(data)
    content_type = guess.mime if guess is not None else None
    if content_type is None or content_type not in ALLOWED_TYPES.get(kind, frozenset()):
        raise RejectedError("type_not_allowed", content_type=content_type)
    display: bytes | None
    display_type: str | None
    if content_type in _PILLOW:
        display, display_type = display_image(
            data, max_pixels=max_pixels, max_side=max_side, jpeg_quality=jpeg_quality
        )
    elif content_type.startswith("image/"):
        display, display_type = None, None  # cannot strip what cannot be decoded
    else:
        display, display_type = data, content_type
    return Processed(
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sealed_original=protector.seal_bytes(data, purpose=ORIGINAL_PURPOSE),
        display=display,
        display_content_type=display_type,
    )


def display_image(
    data: bytes, *, max_pixels: int, max_side: int, jpeg_quality: int
) -> tuple[bytes, str]:
    """A metadata-free copy of an image's first frame: JPEG, or PNG when it has transparency."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise RejectedError("too_many_pixels")
            img.seek(0)
            icc = img.info.get("icc_profile")
            frame = ImageOps.exif_transpose(img)
            alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
            mode = "RGBA" if alpha else "RGB"
            frame = frame.convert(mode)
            if icc:
                frame = _to_srgb(frame, icc, mode)
            frame.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            # Pixels only: no info dict, no EXIF, no XMP, no ICC profile, no comment.
            clean = Image.frombytes(mode, frame.size, frame.tobytes())
    except Image.DecompressionBombError as exc:
        raise RejectedError("too_many_pixels") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise RejectedError("corrupt") from exc
    out = io.BytesIO()
    if alpha:
        clean.save(out, "PNG")
        return out.getvalue(), "image/png"
    clean.save(out, "JPEG", quality=jpeg_quality, optimize=True)
    return out.getvalue(), "image/jpeg"


def _to_srgb(frame: Image.Image, icc: bytes, mode: str) -> Image.Image:
    """Convert from the embedded colour profile to sRGB, since the profile is dropped."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(frame, source, _SRGB, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return frame
    return converted if converted is not None else frame
