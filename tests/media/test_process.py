"""Checking, hashing, sealing and the display copy, without the network."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from ketnoi_media.fetch import RejectedError
from ketnoi_media.process import ORIGINAL_PURPOSE, process
from ketnoi_shared.identity import IdentityProtector

from .conftest import ELF, EXE, GPS_IFD, HTML, PDF, SVG, animated_gif, jpeg_with_gps, png_with_alpha


def test_photo_display_has_no_metadata_and_the_original_is_sealed_exactly(
    protector: IdentityProtector,
):
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as img:  # the test photo does carry it all
        assert img.getexif().get_ifd(GPS_IFD)
        assert {"icc_profile", "comment", "xmp"} <= set(img.info)
    kept = process("image", original, protector=protector)
    assert kept.content_type == "image/jpeg"
    assert kept.sha256 == hashlib.sha256(original).hexdigest()
    assert kept.size == len(original)
    assert original[:64] not in kept.sealed_original
    assert protector.unseal_bytes(kept.sealed_original, purpose=ORIGINAL_PURPOSE) == original
    assert kept.display_content_type == "image/jpeg"
    assert kept.display is not None
    with Image.open(io.BytesIO(kept.display)) as shown:
        shown.load()
        assert shown.size == (32, 64), "EXIF orientation applied before it was dropped"
        assert not shown.getexif()
        assert not {"exif", "icc_profile", "comment", "xmp", "photoshop"} & set(shown.info)
    for marker in (b"Exif\x00\x00", b"ICC_PROFILE", b"xmpmeta", b"Nguyen", b"iPhone", b"Apple"):
        assert marker not in kept.display


def test_transparency_gives_a_png_and_a_gif_its_first_frame(protector: IdentityProtector):
    png = process("image", png_with_alpha(), protector=protector)
    assert png.display_content_type == "image/png"
    gif = process("gif", animated_gif(), protector=protector)
    assert gif.content_type == "image/gif"
    assert gif.display is not None
    assert b"who" not in gif.display
    with Image.open(io.BytesIO(gif.display)) as shown:
        assert getattr(shown, "n_frames", 1) == 1


def test_video_and_file_are_shown_as_they_are(protector: IdentityProtector):
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100
    video = process("video", mp4, protector=protector)
    assert (video.content_type, video.display) == ("video/mp4", mp4)
    pdf = process("file", PDF, protector=protector)
    assert (pdf.content_type, pdf.display_content_type, pdf.display) == (
        "application/pdf",
        "application/pdf",
        PDF,
    )


def test_heic_is_kept_sealed_without_a_display_copy(protector: IdentityProtector):
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100
    kept = process("image", heic, protector=protector)
    assert kept.content_type == "image/heic"
    assert kept.display is None and kept.display_content_type is None


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("image", HTML),
        ("image", SVG),
        ("image", PDF),
        ("file", EXE),
        ("file", ELF),
        ("file", HTML),
        ("video", jpeg_with_gps()),
        ("audio", b"plain text"),
    ],
)
def test_types_outside_the_kind_allow_list_are_refused(
    protector: IdentityProtector, kind: str, body: bytes
):
    with pytest.raises(RejectedError) as err:
        process(kind, body, protector=protector)
    assert err.value.reason == "type_not_allowed"


def test_corrupt_and_oversized_images_are_refused(protector: IdentityProtector):
    with pytest.raises(RejectedError) as err:
        process("image", jpeg_with_gps()[:300], protector=protector)
    assert err.value.reason == "corrupt"
    with pytest.raises(RejectedError) as err:
        process("image", jpeg_with_gps(), protector=protector, max_pixels=1000)
    assert err.value.reason == "too_many_pixels"


def test_large_photos_are_scaled_down_for_display(protector: IdentityProtector):
    out = io.BytesIO()
    Image.new("RGB", (3000, 1000), (1, 2, 3)).save(out, "JPEG")
    kept = process("image", out.getvalue(), protector=protector, max_side=600)
    assert kept.display is not None
    with Image.open(io.BytesIO(kept.display)) as shown:
        assert shown.size == (600, 200)
