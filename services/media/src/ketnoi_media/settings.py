"""Media worker settings (``KETNOI_*``)."""

from __future__ import annotations

from pydantic import Field

from ketnoi_shared.settings import CommonSettings

__all__ = ["MediaSettings"]

MIB = 1024 * 1024


class MediaSettings(CommonSettings):
    media_workers: int = Field(
        default=4, description="Partitions of zalo.events.v1 the media worker handles in parallel."
    )
    media_concurrency: int = Field(
        default=8, description="Downloads in flight at once per process, all partitions together."
    )
    media_poll_s: float = Field(
        default=1.0,
        description="Seconds between looks for pending attachments recorded by another replica "
        "(this process's own are started at once).",
    )
    media_max_bytes_image: int = Field(default=10 * MIB, description="Largest image, in bytes.")
    media_max_bytes_gif: int = Field(default=10 * MIB, description="Largest GIF, in bytes.")
    media_max_bytes_video: int = Field(default=50 * MIB, description="Largest video, in bytes.")
    media_max_bytes_audio: int = Field(
        default=20 * MIB, description="Largest audio clip, in bytes."
    )
    media_max_bytes_file: int = Field(default=25 * MIB, description="Largest file, in bytes.")
    media_max_pixels: int = Field(
        default=64_000_000,
        description="Largest image in pixels (width × height); bigger ones are refused "
        "(decompression bombs).",
    )
    media_display_max_side: int = Field(
        default=4096, description="Display copies of images are scaled down to this many pixels."
    )
    media_display_jpeg_quality: int = Field(
        default=88, description="JPEG quality of display copies."
    )
    media_connect_timeout_s: float = Field(
        default=5.0, description="Seconds to connect to the media host."
    )
    media_read_timeout_s: float = Field(
        default=15.0, description="Seconds without a byte from the media host before giving up."
    )
    media_download_deadline_s: float = Field(
        default=60.0,
        description="Overall deadline of one download attempt (connection, headers and whole "
        "body), in seconds.",
    )
    media_fetch_attempts: int = Field(
        default=3,
        description="Attempts per attachment on transient errors (timeouts, 5xx, connection "
        "errors) before it is recorded as failed.",
    )
    media_fetch_backoff_s: float = Field(
        default=1.0, description="First backoff between download attempts (doubles, jittered)."
    )
    media_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts attachment URLs may point to (`.example.com` allows subdomains); "
        "empty: any http(s) host. JSON list.",
    )
    media_max_poll_interval_s: float = Field(
        default=900.0,
        description="Longest time between two polls of the consumer before Kafka reassigns "
        "its partitions (the consumer only records work: downloads run apart).",
    )

    def max_bytes(self, kind: str) -> int:
        caps = {
            "image": self.media_max_bytes_image,
            "gif": self.media_max_bytes_gif,
            "video": self.media_max_bytes_video,
            "audio": self.media_max_bytes_audio,
            "file": self.media_max_bytes_file,
        }
        return caps[kind]
