"""The upload worker's image checks and previews, on images generated in the tests (see imaging_samples)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from chalicelib import decode_guard, imaging
from chalicelib.imaging import DecodeLimits, ImageRejected, process, sniff_content_type
from chalicelib.photos import models as photo_models
from tests.support import imaging_samples as samples

PROJECT_DIR = Path(__file__).resolve().parents[2]


def opened_preview(preview: imaging.Preview, image_format: str = "WEBP") -> Image.Image:
    """The preview decoded, checked to be `image_format` (new previews are WebP) at the size it claims."""
    image = Image.open(io.BytesIO(preview.data))
    assert image.format == image_format
    assert image.size == (preview.width, preview.height)
    return image


def pixel(preview: imaging.Preview, xy: tuple[int, int], image_format: str = "WEBP") -> tuple[int, ...]:
    value = opened_preview(preview, image_format).convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def mean_colour(image: Image.Image, box: tuple[float, float, float, float]) -> tuple[int, ...]:
    """The mean RGB of a part of the image (`box` in fractions of its width and height)."""
    width, height = image.size
    left, top, right, bottom = box
    part = image.convert("RGB").crop((int(left * width), int(top * height), int(right * width), int(bottom * height)))
    value = part.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(value, tuple)
    return value


def webp_chunks(data: bytes) -> list[bytes]:
    """The kinds of a WebP file's RIFF chunks, in order (VP8X, ICCP, EXIF, XMP, VP8 / VP8L, ALPH…)."""
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    kinds, position = [], 12
    while position + 8 <= len(data):
        kind, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        kinds.append(kind)
        position += 8 + size + (size & 1)
    assert position == len(data)
    return kinds


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 24) -> None:
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (actual, expected)


@pytest.fixture(scope="module")
def heic_encoding() -> None:
    reason = samples.heic_encoding_unavailable()
    if reason:
        pytest.skip(reason)


# --- sniffing -------------------------------------------------------------------------------------------------


def test_the_worker_decodes_exactly_the_types_the_api_accepts() -> None:
    accepted = imaging.ALLOWED_CONTENT_TYPES
    assert accepted == {"image/jpeg", "image/png", "image/webp", "image/gif", "image/heic"}
    assert accepted == photo_models.ALLOWED_CONTENT_TYPES


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08meta"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"heix", b"mif1"), "image/heic"),
        (ftyp(b"mif1", b"heic", b"miaf"), "image/heic"),
        (ftyp(b"msf1", b"hevc"), "image/heic"),
        (ftyp(b"mif1", b"miaf"), "image/heic"),
        (ftyp(b"avif", b"mif1", b"miaf"), None),
        (ftyp(b"mif1", b"avif"), None),
        (ftyp(b"isom", b"mp41"), None),
        (b"\x00\x00\x00\x08ftyp", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", None),
        (b"<!DOCTYPE html><html><body>hi</body></html>", None),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", None),
        (b"PK\x03\x04\x14\x00\x00\x00", None),
        (b"BM\x36\x00\x00\x00", None),
        (b"II*\x00\x08\x00\x00\x00", None),
        (b"just some text", None),
        (b"\xff\xd8", None),
        (b"", None),
    ],
)
def test_sniffing_trusts_only_the_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected


# --- accepted types -------------------------------------------------------------------------------------------

ORANGE = (240, 140, 20)
RED_ISH = (200, 40, 50)
BLUE_ISH = (30, 60, 190)


@functools.cache
def orange_photo(content_type: str) -> bytes:
    image = Image.new("RGB", (1600, 1200), ORANGE)
    if content_type == "image/heic":
        return samples.heic(image)
    if content_type == "image/gif":
        return samples.encode(image.convert("P"), "GIF")
    return samples.encode(image, content_type.removeprefix("image/").upper())


def skip_heic_without_an_encoder(content_type: str) -> None:
    reason = samples.heic_encoding_unavailable() if content_type == "image/heic" else None
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "image/webp", "image/gif", "image/heic"])
def test_each_allowed_type_gets_both_previews_at_the_right_size(content_type: str) -> None:
    skip_heic_without_an_encoder(content_type)

    result = process(orange_photo(content_type), declared_type=content_type)

    assert (result.content_type, result.width, result.height, result.frames) == (content_type, 1600, 1200, 1)
    assert (result.large.width, result.large.height) == (1024, 768)
    assert (result.small.width, result.small.height) == (256, 192)
    for preview in (result.large, result.small):
        assert opened_preview(preview).mode == "RGB"
        assert_close(pixel(preview, (10, 10)), ORANGE)


def test_new_previews_are_lossy_webp_at_the_measured_qualities(monkeypatch: pytest.MonkeyPatch) -> None:
    data = orange_photo("image/jpeg")
    saved: list[dict[str, Any]] = []
    save = Image.Image.save

    def recording_save(image: Image.Image, fp: Any, format: str | None = None, **params: Any) -> None:
        saved.append({"format": format, **params})
        save(image, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", recording_save)

    result = process(data, declared_type="image/jpeg")

    assert result.preview_format is photo_models.PreviewFormat.WEBP
    assert [(s["format"], s["quality"], s["method"]) for s in saved] == [("WEBP", 87, 4), ("WEBP", 82, 4)]
    for preview in (result.large, result.small):
        # Lossy (VP8, 4:2:0), not lossless VP8L: a photo's preview; no alpha chunk, since the image is RGB.
        assert webp_chunks(preview.data) == [b"VP8 "]


def test_without_webp_in_pillow_previews_fall_back_to_jpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging, "PREVIEW_FORMAT", photo_models.PreviewFormat.JPEG)

    result = process(orange_photo("image/png"), declared_type="image/png")

    assert result.preview_format is photo_models.PreviewFormat.JPEG
    for preview in (result.large, result.small):
        assert_close(pixel(preview, (10, 10), "JPEG"), ORANGE)


def test_a_jpeg_large_preview_is_progressive_and_the_small_one_baseline() -> None:
    jpeg = photo_models.PreviewFormat.JPEG
    result = process(orange_photo("image/jpeg"), declared_type="image/jpeg", preview_format=jpeg)

    assert opened_preview(result.large, "JPEG").info.get("progressive") == 1
    assert "progressive" not in opened_preview(result.small, "JPEG").info


def test_webp_previews_keep_the_colours_of_a_photo_like_image_as_the_jpeg_ones_do() -> None:
    # Noise over a gradient with flat patches of colour: detail to compress, like a photo. Each preview's mean colour
    # per quadrant stays the JPEG preview's: no shift from WebP's 4:2:0 or its RGB to YUV conversion. (Bytes are the
    # bench's business: docs/PERFORMANCE.md section 10; noise like this is WebP's worst case.)
    image = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    image = Image.blend(image, samples.noise((1600, 1200)), 0.25)
    image.paste(RED_ISH, (0, 0, 800, 600))
    image.paste(BLUE_ISH, (800, 600, 1600, 1200))
    data = samples.encode(image, "JPEG", quality=92)
    webp = process(data, declared_type="image/jpeg")
    jpeg = process(data, declared_type="image/jpeg", preview_format=photo_models.PreviewFormat.JPEG)
    for name in ("large", "small"):
        webp_image = opened_preview(getattr(webp, name))
        jpeg_image = opened_preview(getattr(jpeg, name), "JPEG")
        for box in ((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1), (0.5, 0, 1, 0.5)):
            assert_close(mean_colour(webp_image, box), mean_colour(jpeg_image, box), tolerance=3)


def test_a_small_image_is_never_upscaled() -> None:
    result = process(samples.encode(Image.new("RGB", (100, 50), ORANGE), "PNG"), declared_type="image/png")

    assert (result.large.width, result.large.height) == (100, 50)
    assert (result.small.width, result.small.height) == (100, 50)


def test_a_declared_type_is_compared_without_case_or_parameters() -> None:
    jpeg = samples.encode(Image.new("RGB", (8, 8)), "JPEG")

    assert process(jpeg, declared_type="IMAGE/JPEG; charset=binary").content_type == "image/jpeg"


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1)], ids=["one-pixel-wide", "one-pixel-high"])
def test_an_extreme_aspect_ratio_still_gets_previews_of_at_least_one_pixel(size: tuple[int, int]) -> None:
    result = process(samples.encode(Image.new("L", size, 90), "PNG"), declared_type="image/png")

    assert (result.width, result.height) == size
    assert max(result.large.width, result.large.height) == 1024
    assert max(result.small.width, result.small.height) == 256
    assert min(result.large.width, result.large.height, result.small.width, result.small.height) == 1
    opened_preview(result.small)


def test_an_extreme_aspect_ratio_jpeg_gets_previews_too() -> None:
    result = process(samples.encode(Image.new("RGB", (60_000, 2), ORANGE), "JPEG"), declared_type="image/jpeg")

    assert (result.large.width, result.large.height) == (1024, 1)
    assert (result.small.width, result.small.height) == (256, 1)


# --- orientation ----------------------------------------------------------------------------------------------


def upright_reference(data: bytes) -> Image.Image:
    """What Pillow's own exif_transpose makes of the file: the independent answer to compare with."""
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_like_exif_transpose(orientation: int) -> None:
    data = samples.encode(samples.marked((96, 48)), "JPEG", exif=samples.exif(orientation=orientation), quality=95)
    reference = upright_reference(data)

    result = process(data, declared_type="image/jpeg")

    assert (result.width, result.height) == reference.size
    assert (result.large.width, result.large.height) == reference.size
    expected = samples.corner_colours(reference)
    assert samples.corner_colours(opened_preview(result.large)) == expected
    assert samples.corner_colours(opened_preview(result.small)) == expected


@pytest.mark.parametrize(
    ("orientation", "size", "corners"),
    [
        # The camera's top-left (red) and top-right (blue) corners, where a viewer must show them.
        (3, (1600, 1200), {"bottom-right": "red", "bottom-left": "blue"}),
        (6, (1200, 1600), {"top-right": "red", "bottom-right": "blue"}),
        (8, (1200, 1600), {"bottom-left": "red", "top-left": "blue"}),
    ],
    ids=["upside-down", "rotated-clockwise", "rotated-anticlockwise"],
)
def test_exif_rotated_jpeg_is_upright_in_previews(
    orientation: int, size: tuple[int, int], corners: dict[str, str]
) -> None:
    data = samples.encode(samples.marked((1600, 1200)), "JPEG", exif=samples.exif(orientation=orientation))

    result = process(data, declared_type="image/jpeg")

    assert (result.width, result.height) == size
    assert max(result.large.width, result.large.height) == 1024
    for preview in (result.large, result.small):
        colours = samples.corner_colours(opened_preview(preview))
        assert {corner: colours[corner] for corner in corners} == corners


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_exif_orientation_in_png_and_webp_is_applied_too(image_format: str) -> None:
    lossless = {"lossless": True} if image_format == "WEBP" else {}
    data = samples.encode(samples.marked((96, 48)), image_format, exif=samples.exif(orientation=6), **lossless)

    result = process(data, declared_type=f"image/{image_format.lower()}")

    assert (result.width, result.height) == (48, 96)
    assert samples.corner_colours(opened_preview(result.large))["top-right"] == "red"


def test_a_rotated_heic_reports_its_upright_size_and_is_rotated_once(heic_encoding: None) -> None:
    # libheif applies the rotation while decoding and pillow-heif resets the EXIF tag, so it must not turn twice.
    data = samples.heic(samples.marked((96, 48)), exif=samples.exif(orientation=6))

    result = process(data, declared_type="image/heic")

    assert (result.width, result.height) == (48, 96)
    assert samples.corner_colours(opened_preview(result.large))["top-right"] == "red"


def test_a_nonsense_orientation_value_is_ignored() -> None:
    data = samples.encode(samples.marked((96, 48)), "JPEG", exif=samples.exif(orientation=42))

    result = process(data, declared_type="image/jpeg")

    assert (result.width, result.height) == (96, 48)
    assert samples.corner_colours(opened_preview(result.large))["top-left"] == "red"


# --- capture time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taken", "offset", "expected"),
    [
        ("2024:05:01 10:20:30", "+02:00", "2024-05-01T08:20:30.000Z"),
        ("2024:05:01 10:20:30", "-05:30", "2024-05-01T15:50:30.000Z"),
        ("2024:01:01 00:30:00", "+01:00", "2023-12-31T23:30:00.000Z"),
        ("2024:05:01 10:20:30", None, "2024-05-01T10:20:30.000Z"),
        ("2024:05:01 10:20:30", "+2h", "2024-05-01T10:20:30.000Z"),
        ("2024:05:01 10:20:30", "+25:00", "2024-05-01T10:20:30.000Z"),
        ("2024:13:45 10:20:30", "+02:00", None),
        ("0000:00:00 00:00:00", None, None),
        ("    :  :     :  :  ", None, None),
        ("yesterday", None, None),
        (None, "+02:00", None),
    ],
    ids=[
        "east-of-utc",
        "west-of-utc",
        "offset-crosses-the-year",
        "no-offset-means-utc",
        "unreadable-offset-means-utc",
        "impossible-offset-means-utc",
        "impossible-date",
        "camera-without-clock",
        "blank-date",
        "not-a-date",
        "no-date",
    ],
)
def test_taken_at_is_the_original_capture_time_in_utc(
    taken: str | None, offset: str | None, expected: str | None
) -> None:
    data = samples.encode(Image.new("RGB", (8, 8)), "JPEG", exif=samples.exif(taken=taken, offset=offset))

    assert process(data, declared_type="image/jpeg").taken_at == expected


def test_taken_at_is_read_from_webp_png_and_heic_too() -> None:
    exif = samples.exif(taken="2023:07:14 18:00:00", offset="+09:00")
    image = Image.new("RGB", (8, 8))
    uploads = {
        "image/webp": samples.encode(image, "WEBP", exif=exif),
        "image/png": samples.encode(image, "PNG", exif=exif),
    }
    if not samples.heic_encoding_unavailable():
        uploads["image/heic"] = samples.heic(image, exif=exif)

    for content_type, data in uploads.items():
        assert process(data, declared_type=content_type).taken_at == "2023-07-14T09:00:00.000Z", content_type


def test_no_exif_means_no_taken_at() -> None:
    assert process(samples.encode(Image.new("RGB", (8, 8)), "JPEG"), declared_type="image/jpeg").taken_at is None


# --- what previews must not carry -----------------------------------------------------------------------------


@pytest.mark.parametrize("preview_format", list(photo_models.PreviewFormat))
def test_previews_carry_no_exif_gps_xmp_or_comment_but_keep_the_colour_profile(
    preview_format: photo_models.PreviewFormat,
) -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>home address</rdf:RDF></x:xmpmeta>'
    profile = samples.srgb_profile()
    data = samples.encode(
        Image.new("RGB", (64, 48), ORANGE),
        "JPEG",
        exif=samples.exif(orientation=1, taken="2024:05:01 10:20:30", gps=True),
        xmp=xmp,
        comment=b"secret comment " * 4000,
        icc_profile=profile,
    )
    source = Image.open(io.BytesIO(data))
    assert {"exif", "xmp", "comment"} <= source.info.keys()  # the sample really has them

    result = process(data, declared_type="image/jpeg", preview_format=preview_format)

    for preview in (result.large, result.small):
        opened = opened_preview(preview, preview_format.name)
        assert not {"exif", "xmp", "comment"} & opened.info.keys()
        assert len(opened.getexif()) == 0
        for leak in (b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/", b"home address", b"secret comment"):
            assert leak not in preview.data
        assert opened.info.get("icc_profile") == profile
        if preview_format is photo_models.PreviewFormat.WEBP:
            # WebP's EXIF chunk holds the TIFF block without JPEG's "Exif\0\0": look at the chunks themselves.
            assert webp_chunks(preview.data) == [b"VP8X", b"ICCP", b"VP8 "]


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_previews_of_png_and_webp_carry_no_exif_or_xmp(image_format: str) -> None:
    data = samples.encode(
        Image.new("RGB", (64, 48), ORANGE),
        image_format,
        exif=samples.exif(taken="2024:05:01 10:20:30", gps=True),
        xmp=b"<x:xmpmeta>home address</x:xmpmeta>",
    )

    result = process(data, declared_type=f"image/{image_format.lower()}")

    for preview in (result.large, result.small):
        assert b"Exif\x00\x00" not in preview.data
        assert b"home address" not in preview.data
        assert webp_chunks(preview.data) == [b"VP8 "]  # no EXIF, XMP or anything else beside the picture


def test_a_profile_for_another_colour_space_is_not_attached_to_rgb_previews() -> None:
    cmyk_profile = samples.profile_claiming(b"CMYK")
    data = samples.encode(Image.new("CMYK", (32, 32), (0, 0, 0, 0)), "JPEG", icc_profile=cmyk_profile)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == cmyk_profile

    result = process(data, declared_type="image/jpeg")

    assert "icc_profile" not in opened_preview(result.large).info


# --- modes ----------------------------------------------------------------------------------------------------


def test_a_16_bit_png_is_scaled_to_8_bits_so_mid_grey_stays_mid_grey() -> None:
    data = samples.encode(Image.new("I;16", (40, 30), 32768), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    result = process(data, declared_type="image/png")

    assert_close(pixel(result.large, (5, 5)), (128, 128, 128), tolerance=3)


def test_a_cmyk_jpeg_with_adobe_inverted_channels_keeps_its_colour() -> None:
    data = samples.encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")  # pure red in ink
    assert Image.open(io.BytesIO(data)).info.get("adobe") is not None  # Pillow writes the inverted Adobe form

    result = process(data, declared_type="image/jpeg")

    assert_close(pixel(result.large, (5, 5)), (255, 0, 0), tolerance=40)


def test_a_palette_png_with_a_transparent_index_is_white_where_transparent() -> None:
    image = Image.new("P", (40, 20), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    image.paste(1, (20, 0, 40, 20))  # right half red, left half index 0 (transparent)
    data = samples.encode(image, "PNG", transparency=0)

    result = process(data, declared_type="image/png")

    assert_close(pixel(result.large, (5, 10)), samples.WHITE, tolerance=4)
    assert_close(pixel(result.large, (35, 10)), samples.RED, tolerance=30)


def test_a_gif_with_a_transparent_colour_is_white_where_transparent() -> None:
    image = Image.new("P", (40, 20), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    image.paste(1, (20, 0, 40, 20))
    data = samples.encode(image, "GIF", transparency=0)

    result = process(data, declared_type="image/gif")

    assert_close(pixel(result.large, (5, 10)), samples.WHITE, tolerance=4)
    assert_close(pixel(result.large, (35, 10)), samples.BLUE, tolerance=30)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_rgba_is_composited_on_white(image_format: str) -> None:
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (20, 0, 40, 20))
    data = samples.encode(image, image_format, **({"lossless": True} if image_format == "WEBP" else {}))

    result = process(data, declared_type=f"image/{image_format.lower()}")

    assert_close(pixel(result.large, (5, 10)), samples.WHITE, tolerance=4)
    assert_close(pixel(result.large, (35, 10)), samples.BLUE, tolerance=30)


def test_half_transparent_grey_with_alpha_is_blended_with_white() -> None:
    data = samples.encode(Image.new("LA", (16, 16), (0, 128)), "PNG")

    result = process(data, declared_type="image/png")

    assert_close(pixel(result.large, (5, 5)), (127, 127, 127), tolerance=6)


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("1", 1, samples.WHITE),
        ("L", 200, (200, 200, 200)),
        ("P", 0, (0, 0, 0)),
        ("RGB", ORANGE, ORANGE),
    ],
)
def test_every_other_png_mode_becomes_an_rgb_preview(mode: str, colour: Any, expected: tuple[int, ...]) -> None:
    result = process(samples.encode(Image.new(mode, (300, 200), colour), "PNG"), declared_type="image/png")

    assert opened_preview(result.large).mode == "RGB"
    assert_close(pixel(result.small, (5, 5)), expected, tolerance=6)


def test_a_greyscale_jpeg_becomes_an_rgb_preview() -> None:
    result = process(samples.encode(Image.new("L", (300, 200), 60), "JPEG"), declared_type="image/jpeg")

    assert opened_preview(result.large).mode == "RGB"
    assert_close(pixel(result.large, (5, 5)), (60, 60, 60), tolerance=4)


# --- animation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("image_format", "content_type"), [("GIF", "image/gif"), ("WEBP", "image/webp")])
def test_an_animation_is_accepted_with_its_frame_count_and_previewed_from_the_first_frame(
    image_format: str, content_type: str
) -> None:
    data = samples.animated(image_format, [samples.RED, samples.BLUE, (0, 160, 0)])

    result = process(data, declared_type=content_type)

    assert result.frames == 3
    assert (result.width, result.height) == (32, 24)
    assert samples.nearest_colour_name(pixel(result.large, (16, 12))) == "red"


def test_an_animated_png_reports_its_frames_too() -> None:
    data = samples.animated("PNG", [samples.RED, samples.BLUE])

    result = process(data, declared_type="image/png")

    assert result.frames == 2
    assert samples.nearest_colour_name(pixel(result.large, (16, 12))) == "red"


# --- doing the least work -------------------------------------------------------------------------------------


def spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[tuple[Any, ...]]:
    """Record every call's arguments (and for methods the object) while still calling the real thing."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = getattr(owner, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append((*args, kwargs, result))
        return result

    monkeypatch.setattr(owner, name, recording)
    return calls


@pytest.mark.parametrize(("orientation", "reported"), [(1, (4096, 3072)), (6, (3072, 4096))])
def test_a_large_jpeg_is_decoded_once_at_a_reduced_scale(
    monkeypatch: pytest.MonkeyPatch, orientation: int, reported: tuple[int, int]
) -> None:
    data = samples.encode(samples.marked((4096, 3072)), "JPEG", exif=samples.exif(orientation=orientation))
    opens = spy(monkeypatch, Image, "open")
    drafts = spy(monkeypatch, JpegImagePlugin.JpegImageFile, "draft")
    decoders = spy(monkeypatch, Image, "_getdecoder")

    result = process(data, declared_type="image/jpeg")

    assert len(opens) == 1
    assert opens[0][-2] == {"formats": ["JPEG"]}  # no other decoder may look at the bytes
    assert len(drafts) == 1
    # DCT scaling by 4 leaves exactly the large preview's 1024 px on the long edge, and the same request serves
    # the portrait result: uniform scaling does not care about rotation.
    assert drafts[0][0].size == (1024, 768)
    assert len(decoders) == 1
    assert (result.width, result.height) == reported
    assert max(result.large.width, result.large.height) == 1024
    assert sorted((result.small.width, result.small.height)) == [192, 256]


def test_the_small_preview_is_resampled_from_the_large_one_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    data = samples.encode(samples.marked((3000, 2000)), "JPEG", exif=samples.exif(orientation=8))
    decoders = spy(monkeypatch, Image, "_getdecoder")
    resizes = spy(monkeypatch, Image.Image, "resize")

    result = process(data, declared_type="image/jpeg")

    assert len(decoders) == 1
    # (image, size, resample, …): the DCT-halved 1500×1000 becomes the large preview, which becomes the small one.
    assert [(call[0].size, call[1]) for call in resizes] == [((1500, 1000), (1024, 683)), ((683, 1024), (171, 256))]
    assert (result.large.width, result.large.height, result.small.width, result.small.height) == (683, 1024, 171, 256)


def test_a_jpeg_only_just_above_the_preview_size_is_not_reduced_below_it(monkeypatch: pytest.MonkeyPatch) -> None:
    drafts = spy(monkeypatch, JpegImagePlugin.JpegImageFile, "draft")

    result = process(samples.encode(Image.new("RGB", (2000, 1000), ORANGE), "JPEG"), declared_type="image/jpeg")

    assert drafts[0][0].size == (2000, 1000)  # half scale would give 1000 px, below the preview's 1024
    assert (result.large.width, result.large.height) == (1024, 512)


def test_an_opaque_or_rgba_image_is_not_copied_into_its_own_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # PNG and WebP have no reduced decode, so a needless full-size copy would double the worker's peak memory.
    converts = spy(monkeypatch, Image.Image, "convert")

    process(samples.encode(Image.new("RGBA", (1500, 1000)), "PNG"), declared_type="image/png")
    process(samples.encode(Image.new("RGB", (1500, 1000)), "PNG"), declared_type="image/png")

    assert [call for call in converts if call[0].mode == call[1]] == []


@pytest.mark.parametrize(
    ("content_type", "pillow_format"),
    [("image/png", "PNG"), ("image/gif", "GIF"), ("image/webp", "WEBP"), ("image/heic", "HEIF")],
)
def test_only_the_sniffed_types_decoder_parses_the_upload(
    monkeypatch: pytest.MonkeyPatch, content_type: str, pillow_format: str
) -> None:
    skip_heic_without_an_encoder(content_type)
    data = orange_photo(content_type)
    opens = spy(monkeypatch, Image, "open")

    process(data, declared_type=content_type)

    assert [call[-2] for call in opens] == [{"formats": [pillow_format]}]


# --- hostile uploads ------------------------------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# name: (how to make the upload, its declared type, what the reason must say). Built lazily: some take a moment.
HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "empty": (lambda: b"", "image/jpeg", "file is empty"),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/png", "not an image"),
    "svg-declared-as-svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml", "not an image"),
    "html": (lambda: b"<!doctype html><script>alert(1)</script>", "image/jpeg", "not an image"),
    "pdf": (lambda: b"%PDF-1.7\n1 0 obj <<>> endobj\n", "image/jpeg", "not an image"),
    "zip": (lambda: b"PK\x03\x04" + bytes(60), "image/png", "not an image"),
    "text": (lambda: b"hello, world\n", "image/gif", "not an image"),
    "bmp": (lambda: samples.encode(Image.new("RGB", (4, 4)), "BMP"), "image/png", "not an image"),
    "tiff": (lambda: samples.encode(Image.new("RGB", (4, 4)), "TIFF"), "image/jpeg", "not an image"),
    "jpeg-magic-then-random-bytes": (
        lambda: b"\xff\xd8\xff" + samples.random_bytes(4000, seed=7),
        "image/jpeg",
        "file is not a readable JPEG image",
    ),
    "jpeg-magic-only": (lambda: b"\xff\xd8\xff", "image/jpeg", "file is not a readable JPEG image"),
    "png-signature-only": (lambda: b"\x89PNG\r\n\x1a\n", "image/png", "file is not a readable PNG image"),
    "truncated-jpeg": (
        lambda: truncated(samples.encode(samples.noise((64, 64)), "JPEG")),
        "image/jpeg",
        "file is truncated or corrupt",
    ),
    "truncated-progressive-jpeg": (
        lambda: truncated(samples.encode(samples.noise((64, 64)), "JPEG", progressive=True)),
        "image/jpeg",
        "file is truncated or corrupt",
    ),
    "truncated-png": (
        lambda: truncated(samples.encode(samples.noise((64, 64)), "PNG")),
        "image/png",
        "file is truncated or corrupt",
    ),
    "truncated-gif": (
        lambda: truncated(samples.encode(samples.noise((64, 64), "L"), "GIF")),
        "image/gif",
        "file is truncated or corrupt",
    ),
    "gif-cut-inside-its-second-frame": (
        samples.gif_cut_inside_its_second_frame,
        "image/gif",
        "file is truncated or corrupt",
    ),
    "truncated-webp": (
        lambda: truncated(samples.encode(samples.noise((64, 64)), "WEBP")),
        "image/webp",
        "file is not a readable WebP image",
    ),
    "png-declared-as-jpeg": (
        lambda: samples.encode(Image.new("RGB", (4, 4)), "PNG"),
        "image/jpeg",
        "declared image/jpeg but the file is image/png",
    ),
    "jpeg-declared-as-html": (
        lambda: samples.encode(Image.new("RGB", (4, 4)), "JPEG"),
        "text/html",
        "declared text/html but the file is image/jpeg",
    ),
    "png-bomb-over-the-budget": (
        lambda: samples.blank_bilevel_png(10_001, 10_000),
        "image/png",
        "image is too large (10001×10000 pixels, limit 100 megapixels)",
    ),
    "png-bomb-over-pillows-hard-limit": (
        lambda: samples.blank_bilevel_png(20_000, 20_000),
        "image/png",
        "image is too large (limit 100 megapixels)",
    ),
    "jpeg-header-over-the-budget": (
        lambda: samples.jpeg_declaring_size(12_000, 9_000),
        "image/jpeg",
        "image is too large (12000×9000 pixels, limit 100 megapixels)",
    ),
    "jpeg-header-bomb": (lambda: samples.jpeg_declaring_size(65_000, 65_000), "image/jpeg", "image is too large"),
    "gif-frame-far-larger-than-its-screen": (
        lambda: samples.gif_with_oversized_frame((30_000, 30_000)),
        "image/gif",
        "image is too large",
    ),
}


@pytest.mark.parametrize(("make_upload", "declared_type", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_upload_is_rejected_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, make_upload: Callable[[], bytes], declared_type: str, reason: str
) -> None:
    data = make_upload()
    decoders = spy(monkeypatch, Image, "_getdecoder")

    with pytest.raises(ImageRejected) as rejected:
        process(data, declared_type=declared_type)

    assert reason in rejected.value.reason
    assert str(rejected.value) == rejected.value.reason
    if "too large" in reason:
        assert decoders == []  # refused from the header alone


def test_a_truncated_heic_is_rejected(heic_encoding: None) -> None:
    data = samples.heic(samples.noise((64, 64)))

    with pytest.raises(ImageRejected) as rejected:
        process(truncated(data), declared_type="image/heic")

    assert "HEIC" in rejected.value.reason or "corrupt" in rejected.value.reason


def test_a_libheif_failure_is_a_rejected_heic_but_not_an_excuse_elsewhere(
    heic_encoding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libheif reports damage and its own security limits (pixels, items) as RuntimeError, e.g. "Memory
    # allocation error: Security limit exceeded"; from any other decoder a RuntimeError is a bug.
    from pillow_heif import as_plugin

    def libheif_refuses(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Memory allocation error: Security limit exceeded")

    heic = samples.heic(Image.new("RGB", (16, 16)))
    process(heic, declared_type="image/heic")  # registers the opener before its decoder is replaced
    monkeypatch.setattr(as_plugin.HeifImageFile, "load", libheif_refuses)
    monkeypatch.setattr(ImageFile.ImageFile, "load", libheif_refuses)

    with pytest.raises(ImageRejected, match="file is truncated or corrupt"):
        process(heic, declared_type="image/heic")
    with pytest.raises(RuntimeError):
        process(samples.encode(Image.new("RGB", (16, 16)), "PNG"), declared_type="image/png")


def test_an_image_over_a_small_budget_is_refused_from_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    decoders = spy(monkeypatch, Image, "_getdecoder")
    data = samples.encode(Image.new("RGB", (200, 200)), "PNG")

    with pytest.raises(ImageRejected, match=r"image is too large \(200×200 pixels, limit 0\.01 megapixels\)"):
        process(data, declared_type="image/png", max_pixels=10_000)

    assert decoders == []
    assert process(data, declared_type="image/png", max_pixels=40_000).width == 200


def test_the_budget_holds_even_with_pillows_own_limit_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)

    with pytest.raises(ImageRejected, match="too large"):
        process(samples.blank_bilevel_png(10_001, 10_000), declared_type="image/png")


def test_pillows_bomb_warning_is_an_error_not_a_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    data = samples.encode(Image.new("RGB", (40, 40)), "PNG")  # 1,600 px: Pillow warns above 1,000

    with warnings.catch_warnings(record=True) as emitted:
        warnings.simplefilter("always")
        with pytest.raises(ImageRejected, match="too large"):
            process(data, declared_type="image/png", max_pixels=1_000)

    assert not [warning for warning in emitted if issubclass(warning.category, Image.DecompressionBombWarning)]


def test_a_budget_above_pillows_threshold_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default budget (100 MP) is above Pillow's default warning threshold (89.5 MP): photos in between count.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)

    accepted = process(samples.encode(Image.new("RGB", (40, 40)), "PNG"), declared_type="image/png", max_pixels=1_900)
    assert accepted.width == 40
    with pytest.raises(ImageRejected, match="too large"):  # Pillow's hard limit (twice its threshold) still holds
        process(samples.encode(Image.new("RGB", (50, 50)), "PNG"), declared_type="image/png", max_pixels=10_000)


def test_processing_leaves_the_global_warning_filters_and_limits_alone() -> None:
    filters_before, limit_before = list(warnings.filters), Image.MAX_IMAGE_PIXELS

    process(samples.encode(Image.new("RGB", (8, 8)), "JPEG"), declared_type="image/jpeg")
    with pytest.raises(ImageRejected):
        process(samples.jpeg_declaring_size(65_000, 65_000), declared_type="image/jpeg")

    assert (list(warnings.filters), Image.MAX_IMAGE_PIXELS) == (filters_before, limit_before)


@pytest.mark.parametrize(
    ("owner", "name"),
    [(Image, "open"), (ImageFile.ImageFile, "load"), (Image.Image, "getexif"), (Image.Image, "resize")],
    ids=["opening", "decoding", "reading-exif", "resampling"],
)
@pytest.mark.parametrize("error", [MemoryError, TypeError])
def test_running_out_of_memory_or_a_bug_is_not_mistaken_for_a_bad_file(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, error: type[Exception]
) -> None:
    def failing(*args: Any, **kwargs: Any) -> None:
        raise error

    data = samples.encode(Image.new("RGB", (2000, 1000)), "PNG")
    monkeypatch.setattr(owner, name, failing)

    with pytest.raises(error):
        process(data, declared_type="image/png")


def damaged_copies(data: bytes, *, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - reproducible damage, not a secret
    copies = []
    for _ in range(count):
        copy = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            copy[rng.randrange(len(copy))] = rng.randrange(256)
        if rng.random() < 0.3:
            del copy[rng.randrange(3, len(copy)) :]
        copies.append(bytes(copy))
    return copies


def fuzz_seeds() -> dict[str, tuple[bytes, str]]:
    photo = samples.marked((48, 32))
    exif = samples.exif(orientation=6, taken="2024:05:01 10:20:30", gps=True)
    seeds = {
        "jpeg": (samples.encode(photo, "JPEG", exif=exif), "image/jpeg"),
        "png": (samples.encode(photo.convert("P"), "PNG", transparency=0, exif=exif), "image/png"),
        "gif": (samples.animated("GIF", [samples.RED, samples.BLUE]), "image/gif"),
        "webp": (samples.encode(photo, "WEBP", exif=exif), "image/webp"),
    }
    if not samples.heic_encoding_unavailable():
        seeds["heic"] = (samples.heic(photo), "image/heic")
    return seeds


@pytest.mark.parametrize("kind", ["jpeg", "png", "gif", "webp", "heic"])
def test_a_damaged_file_is_either_processed_or_rejected_never_crashes(kind: str) -> None:
    seeds = fuzz_seeds()
    if kind not in seeds:
        pytest.skip(samples.heic_encoding_unavailable() or "no sample")
    data, content_type = seeds[kind]

    for damaged in damaged_copies(data, seed=len(kind), count=60):
        try:
            result = process(damaged, declared_type=content_type)
        except ImageRejected:
            continue  # any other exception fails the test
        opened_preview(result.large)


# --- what a decode may cost (issue 11) ----------------------------------------------------------------------------

NO_LIMITS = DecodeLimits(**{field.name: 10**15 for field in dataclasses.fields(DecodeLimits)})


def jpeg_header_segments(data: bytes) -> int:
    """Marker segments up to and including the first scan header: counted here independently of imaging."""
    count, position = 0, 2
    while True:
        marker, length = data[position + 1], int.from_bytes(data[position + 2 : position + 4], "big")
        count += 1
        if marker == 0xDA:
            return count
        position += 2 + length


def png_chunks(data: bytes) -> int:
    count, position = 0, 8
    while position < len(data):
        count += 1
        position += 12 + int.from_bytes(data[position : position + 4], "big")
    return count


def heic_tiles(rows: int, columns: int, canvas: tuple[int, int] | None = None) -> bytes:
    return samples.heic_grid(canvas or (64 * columns, 64 * rows), (rows, columns), tile=(64, 64))


# name: (the limits, a file just inside them, one with one more of what they count, its type, the reason).
# Built lazily: the limits and files only when their case runs.
BOUNDARIES: dict[str, tuple[Callable[[], dict[str, int]], Callable[[], bytes], Callable[[], bytes], str, str]] = {
    # A 64×64 greyscale JPEG is 64 blocks; jpeg_scan_bomb writes one DC scan, then its refinements.
    "jpeg-scans": (
        lambda: {"jpeg_scans": 8},
        lambda: samples.jpeg_scan_bomb(64, 64, 7),
        lambda: samples.jpeg_scan_bomb(64, 64, 8),
        "image/jpeg",
        "JPEG has more than 8 scans",
    ),
    "jpeg-blocks-over-all-scans": (
        lambda: {"jpeg_block_scans": 5 * 64},
        lambda: samples.jpeg_scan_bomb(64, 64, 4),
        lambda: samples.jpeg_scan_bomb(64, 64, 5),
        "image/jpeg",
        "JPEG takes too long to decode (over 320 blocks in its scans)",
    ),
    "jpeg-segments": (
        lambda: {"jpeg_segments": jpeg_header_segments(samples.jpeg_with_segments(20))},
        lambda: samples.jpeg_with_segments(20),
        lambda: samples.jpeg_with_segments(21),
        "image/jpeg",
        "JPEG has more than",
    ),
    "jpeg-stray-bytes": (
        lambda: {"jpeg_stray_bytes": 100},
        lambda: samples.jpeg_with_fill_bytes(100),
        lambda: samples.jpeg_with_fill_bytes(101),
        "image/jpeg",
        "JPEG has more than 100 stray bytes between its segments",
    ),
    "png-chunks": (
        lambda: {"png_chunks": png_chunks(samples.png_with_chunks(20)), "metadata_chunks": 10**6},
        lambda: samples.png_with_chunks(20),
        lambda: samples.png_with_chunks(21),
        "image/png",
        "PNG has more than 23 chunks",
    ),
    "png-metadata-chunks": (
        lambda: {"metadata_chunks": 20},
        lambda: samples.png_with_chunks(20),
        lambda: samples.png_with_chunks(21),
        "image/png",
        "PNG has more than 20 metadata chunks",
    ),
    "webp-metadata-chunks": (
        lambda: {"metadata_chunks": 2 + 20},  # VP8X and ANIM, then the extra ones
        lambda: samples.animated_webp(2, extra_chunks=20),
        lambda: samples.animated_webp(2, extra_chunks=21),
        "image/webp",
        "WebP has more than 22 metadata chunks",
    ),
    "gif-data-blocks": (
        lambda: {"gif_sub_blocks": 50},
        lambda: samples.gif_with_comment_blocks(49),  # and the frame's own one
        lambda: samples.gif_with_comment_blocks(50),
        "image/gif",
        "GIF has more than 50 data blocks",
    ),
    "gif-stray-bytes": (
        lambda: {"gif_stray_bytes": 100},
        lambda: samples.gif_with_stray_bytes(100),
        lambda: samples.gif_with_stray_bytes(101),
        "image/gif",
        "GIF has more than 100 stray bytes between its blocks",
    ),
    "gif-frames": (
        lambda: {"frames": 20},
        lambda: samples.gif_with_frames(20),
        lambda: samples.gif_with_frames(21),
        "image/gif",
        "animation has more than 20 frames",
    ),
    "apng-frames": (
        lambda: {"frames": 20},
        lambda: samples.png_with_frame_controls(20),
        lambda: samples.png_with_frame_controls(21),
        "image/png",
        "animation has more than 20 frames",
    ),
    "webp-frames": (
        lambda: {"frames": 20},
        lambda: samples.animated_webp(20),
        lambda: samples.animated_webp(21),
        "image/webp",
        "animation has more than 20 frames",
    ),
    "animation-pixels": (
        lambda: {"animation_pixels": 4 * 100},
        lambda: samples.gif_with_frames(4, screen=(10, 10), frame=(10, 10)),
        lambda: samples.gif_with_frames(5, screen=(10, 10), frame=(10, 10)),
        "image/gif",
        "animation has too many pixels in all its frames (limit 400)",
    ),
    "heic-items": (
        lambda: {"heic_items": 10},
        lambda: heic_tiles(1, 9),  # the grid and its 9 tiles
        lambda: heic_tiles(1, 10),
        "image/heic",
        "HEIC has more than 10 items",
    ),
    "heic-decoded-pixels": (
        lambda: {"heic_decoded_pixels": 4 * 64 * 64},
        lambda: heic_tiles(2, 2, canvas=(64, 64)),  # four tiles decoded whole, cropped to one tile's size
        lambda: heic_tiles(2, 3, canvas=(64, 64)),
        "image/heic",
        "HEIC decodes too many pixels",
    ),
}


@pytest.mark.parametrize(("limits", "inside", "outside", "content_type", "reason"), BOUNDARIES.values(), ids=BOUNDARIES)
def test_each_structural_limit_lets_a_file_just_inside_through_and_refuses_one_more_before_pillow_reads_it(
    monkeypatch: pytest.MonkeyPatch,
    limits: Callable[[], dict[str, int]],
    inside: Callable[[], bytes],
    outside: Callable[[], bytes],
    content_type: str,
    reason: str,
) -> None:
    skip_heic_without_an_encoder(content_type)
    bounded = dataclasses.replace(imaging.DEFAULT_LIMITS, **limits())

    assert process(inside(), declared_type=content_type, limits=bounded).content_type == content_type
    opens = spy(monkeypatch, Image, "open")
    with pytest.raises(ImageRejected) as rejected:
        process(outside(), declared_type=content_type, limits=bounded)

    assert reason in rejected.value.reason
    assert opens == []  # refused from the bytes alone
    process(outside(), declared_type=content_type, limits=NO_LIMITS)  # the limit, nothing else, refused it


def test_the_default_limits_let_files_just_inside_them_through() -> None:
    limits = imaging.DEFAULT_LIMITS
    just_inside = {
        "image/jpeg": [
            samples.jpeg_scan_bomb(64, 64, limits.jpeg_scans - 1),
            samples.jpeg_with_fill_bytes(limits.jpeg_stray_bytes),
        ],
        "image/png": [samples.png_with_chunks(limits.metadata_chunks), samples.png_with_frame_controls(limits.frames)],
        "image/gif": [
            samples.gif_with_frames(limits.frames),
            samples.gif_with_comment_blocks(limits.gif_sub_blocks - 1),
        ],
        "image/webp": [samples.animated_webp(limits.frames)],
    }
    for content_type, uploads in just_inside.items():
        for data in uploads:
            process(data, declared_type=content_type)


# Real hostile files at the default limits: each costs seconds of CPU or hundreds of MB without its limit (figures
# in DecodeLimits' comments), and is refused from its bytes before Pillow reads them. Built lazily: some are 24 MB.
COSTLY: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "jpeg-scan-bomb": (
        lambda: samples.jpeg_scan_bomb(4000, 3000, 34_000),
        "image/jpeg",
        "JPEG has more than 100 scans",
    ),
    "jpeg-6-million-empty-segments": (
        lambda: samples.jpeg_with_segments(6_000_000),
        "image/jpeg",
        "JPEG has more than 1000 marker segments",
    ),
    "jpeg-24-mb-of-fill-bytes": (
        lambda: samples.jpeg_with_fill_bytes(24_000_000),
        "image/jpeg",
        "JPEG has more than 65536 stray bytes",
    ),
    "png-2-million-chunks": (
        lambda: samples.png_with_chunks(2_000_000),
        "image/png",
        "PNG has more than 1000 metadata chunks",
    ),
    "png-image-data-in-one-byte-chunks": (
        lambda: samples.png(1400, 1400, colour_type=0, stored=True, idat_bytes=1),
        "image/png",
        "PNG has more than 100000 chunks",
    ),
    "apng-a-million-frames": (
        lambda: samples.png_with_frame_controls(1_000_000),
        "image/png",
        "animation has more than 10000 frames",
    ),
    "gif-a-million-frames": (
        lambda: samples.gif_with_frames(1_000_000),
        "image/gif",
        "animation has more than 10000 frames",
    ),
    "gif-comment-in-12-million-blocks": (
        lambda: samples.gif_with_comment_blocks(12_000_000),
        "image/gif",
        "GIF has more than 400000 data blocks",
    ),
    "webp-half-a-million-frames": (
        lambda: samples.animated_webp(500_000),
        "image/webp",
        "animation has more than 10000 frames",
    ),
    "webp-100-mp-canvas-in-94-bytes": (
        lambda: samples.animated_webp(1, canvas=(10_000, 10_000)),
        "image/webp",
        "image needs too much memory to decode (about 1573 MB, limit 1024 MB)",
    ),
}


@pytest.mark.parametrize(("make_upload", "declared_type", "reason"), COSTLY.values(), ids=COSTLY.keys())
def test_a_file_that_would_cost_too_much_to_decode_is_refused_from_its_bytes(
    monkeypatch: pytest.MonkeyPatch, make_upload: Callable[[], bytes], declared_type: str, reason: str
) -> None:
    data = make_upload()
    opens = spy(monkeypatch, Image, "open")

    with pytest.raises(ImageRejected) as rejected:
        process(data, declared_type=declared_type)

    assert reason in rejected.value.reason
    assert opens == []


@pytest.mark.parametrize(
    ("make_upload", "reason"),
    [
        (lambda: samples.heic_grid((1000, 1000), (20, 20), tile=(4096, 4096)), "HEIC decodes too many pixels (6711"),
        (
            lambda: samples.heic_grid((1000, 1000), (20, 20), tile=(4096, 4096), one_tile_item=True),
            "HEIC decodes too many pixels (6711",  # libheif decodes a tile as often as the grid names it
        ),
        (lambda: samples.heic_grid((1000, 1000), (40, 40)), "HEIC has more than 1000 items"),
    ],
    ids=["tiles-far-larger-than-the-image", "one-large-tile-named-400-times", "1601-items"],
)
def test_a_heic_that_would_cost_too_much_to_decode_is_refused_from_its_bytes(
    heic_encoding: None, monkeypatch: pytest.MonkeyPatch, make_upload: Callable[[], bytes], reason: str
) -> None:
    data = make_upload()
    opens = spy(monkeypatch, Image, "open")

    with pytest.raises(ImageRejected) as rejected:
        process(data, declared_type="image/heic")

    assert reason in rejected.value.reason
    assert opens == []


def structured_seeds() -> dict[str, tuple[bytes, str]]:
    """Small files of every structure the walkers count: scans, segments, chunks, frames, sub-blocks, items."""
    seeds = {
        "jpeg-progressive": (samples.jpeg_scan_bomb(48, 40, 3), "image/jpeg"),
        "jpeg-segments": (samples.jpeg_with_segments(3), "image/jpeg"),
        "jpeg-pillow-progressive": (samples.encode(samples.marked((48, 40)), "JPEG", progressive=True), "image/jpeg"),
        "apng": (samples.png_with_frame_controls(3), "image/png"),
        "gif": (samples.gif_with_frames(3, screen=(4, 4), frame=(4, 4)), "image/gif"),
        "gif-comment": (samples.gif_with_comment_blocks(5), "image/gif"),
        "webp": (samples.animated_webp(3, extra_chunks=2), "image/webp"),
    }
    if not samples.heic_encoding_unavailable():
        seeds["heic-grid"] = (samples.heic_grid((128, 64), (1, 2), tile=(64, 64)), "image/heic")
    return seeds


@pytest.mark.parametrize(
    "kind",
    ["jpeg-progressive", "jpeg-segments", "jpeg-pillow-progressive", "apng", "gif", "gif-comment", "webp", "heic-grid"],
)
def test_a_damaged_structure_is_counted_or_rejected_never_crashes_the_walk(kind: str) -> None:
    seeds = structured_seeds()
    if kind not in seeds:
        pytest.skip(samples.heic_encoding_unavailable() or "no sample")
    data, content_type = seeds[kind]

    for damaged in damaged_copies(data, seed=len(kind), count=150):
        started = time.perf_counter()
        with contextlib.suppress(ImageRejected):  # any other exception fails the test
            process(damaged, declared_type=content_type)
        assert time.perf_counter() - started < 2


def estimated_megabytes(data: bytes, content_type: str) -> int:
    """The decode's estimated peak, as the refusal under a tiny memory budget states it."""
    with pytest.raises(ImageRejected) as rejected:
        process(data, declared_type=content_type, limits=dataclasses.replace(NO_LIMITS, memory_bytes=1))
    found = re.search(r"about (\d+) MB", rejected.value.reason)
    assert found, rejected.value.reason
    return int(found[1])


def test_the_memory_budget_lets_an_image_just_inside_through_and_refuses_one_just_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = samples.png(2000, 2000, colour_type=6)  # RGBA: the decoded image, then its flattened copy
    estimate = estimated_megabytes(data, "image/png")
    decoders = spy(monkeypatch, Image, "_getdecoder")

    with pytest.raises(ImageRejected, match=rf"about {estimate} MB, limit {estimate - 1} MB"):
        process(data, declared_type="image/png", limits=DecodeLimits(memory_bytes=(estimate - 1) << 20))

    assert decoders == []  # refused from the header
    # The reason states whole megabytes, rounded down: a budget one more is the one just above the estimate.
    process(data, declared_type="image/png", limits=DecodeLimits(memory_bytes=(estimate + 1) << 20))
    assert len(decoders) == 1


def flat_photo(mode: str, size: tuple[int, int] = (3000, 3000)) -> Image.Image:
    """A plain image of `mode` with some variation, so no encoder can shortcut it completely."""
    gradient = Image.linear_gradient("L").resize(size)
    return Image.merge(mode, [gradient] * len(Image.new(mode, (1, 1)).getbands()))


@functools.cache
def memory_cases() -> dict[str, tuple[bytes, str]]:
    rows = bytes(range(256)) * 100
    cases = {
        "png-rgba": (samples.png(3000, 3000, colour_type=6, row=rows), "image/png"),
        "png-16-bit-grey-alpha": (samples.png(3000, 3000, bit_depth=16, colour_type=4, row=rows), "image/png"),
        "png-16-bit-rgb-with-trns": (
            samples.png(
                3000, 3000, bit_depth=16, colour_type=2, row=rows, before_image=samples.png_chunk(b"tRNS", bytes(6))
            ),
            "image/png",
        ),
        "png-16-bit-grey": (samples.png(3000, 3000, bit_depth=16, colour_type=0, row=rows), "image/png"),
        "png-palette-with-transparency": (
            samples.encode(flat_photo("L").convert("P"), "PNG", transparency=0),
            "image/png",
        ),
        "jpeg-progressive-4:4:4": (
            samples.encode(flat_photo("RGB"), "JPEG", progressive=True, subsampling=0),
            "image/jpeg",
        ),
        "gif": (samples.encode(flat_photo("L").convert("P"), "GIF"), "image/gif"),
        "webp": (samples.encode(flat_photo("RGB"), "WEBP", quality=50, method=0), "image/webp"),
    }
    if not samples.heic_encoding_unavailable():
        cases["heic-grid"] = (samples.heic_grid((3000, 3000), (6, 6)), "image/heic")
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "png-rgba",
        "png-16-bit-grey-alpha",
        "png-16-bit-rgb-with-trns",
        "png-16-bit-grey",
        "png-palette-with-transparency",
        "jpeg-progressive-4:4:4",
        "gif",
        "webp",
        "heic-grid",
    ],
)
def test_the_memory_estimate_covers_the_measured_peak(case: str) -> None:
    if case not in memory_cases():
        pytest.skip(samples.heic_encoding_unavailable() or "no sample")
    data, content_type = memory_cases()[case]
    estimate = estimated_megabytes(data, content_type)
    measured: list[decode_guard.Usage] = []

    imaging.process_guarded(data, declared_type=content_type, on_decode=lambda _, usage: measured.append(usage))

    peak = measured[0].added_bytes >> 20
    assert peak <= estimate, f"{case}: measured {peak} MB, estimated {estimate} MB"
    assert estimate <= 1.5 * peak + 64, f"{case}: estimated {estimate} MB for a measured {peak} MB"


# --- the guard: the decode in a child the kernel stops --------------------------------------------------------


def no_child_left_behind() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG) == (0, 0)  # children still running, none of them a finished one
    except ChildProcessError:
        return True  # no children at all


@pytest.fixture
def parent_state() -> Iterator[None]:
    """Whatever a guarded decode does in its child, this process keeps its limits, has no child left behind and
    can fork the next one."""
    names = ("RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_CORE")
    limits = [resource.getrlimit(getattr(resource, name)) for name in names]
    pid = os.getpid()
    yield
    assert os.getpid() == pid
    assert [resource.getrlimit(getattr(resource, name)) for name in names] == limits
    assert no_child_left_behind()
    assert decode_guard.run(lambda: b"still here")[0] == b"still here"


def recorded(outcomes: list[tuple[str, decode_guard.Usage]]) -> imaging.OnDecode:
    return lambda outcome, usage: outcomes.append((outcome, usage))


def test_a_guarded_decode_returns_what_the_unguarded_one_does(parent_state: None) -> None:
    exif = samples.exif(orientation=6, taken="2024:05:01 10:20:30", offset="+02:00")
    data = samples.encode(samples.marked((1600, 1200)), "JPEG", exif=exif, icc_profile=samples.srgb_profile())
    outcomes: list[tuple[str, decode_guard.Usage]] = []

    guarded = imaging.process_guarded(data, declared_type="image/jpeg", on_decode=recorded(outcomes))

    assert guarded == process(data, declared_type="image/jpeg")
    [(outcome, usage)] = outcomes
    assert outcome == "ready"
    assert 0 < usage.cpu_seconds < decode_guard.CPU_SECONDS
    assert usage.peak_rss_bytes > 0
    assert usage.added_bytes < decode_guard.MEMORY_BYTES


def test_a_rejection_in_the_child_is_the_same_rejection_in_the_worker(parent_state: None) -> None:
    outcomes: list[tuple[str, decode_guard.Usage]] = []

    with pytest.raises(ImageRejected, match="JPEG has more than 100 scans"):
        imaging.process_guarded(
            samples.jpeg_scan_bomb(64, 64, 200), declared_type="image/jpeg", on_decode=recorded(outcomes)
        )

    assert [outcome for outcome, _ in outcomes] == ["rejected"]


def test_a_decode_stuck_in_c_is_stopped_at_its_cpu_budget(parent_state: None) -> None:
    # The scan bomb with every structural limit lifted: libjpeg would decode it for minutes, in C, where no Python
    # signal handler could interrupt it.
    outcomes: list[tuple[str, decode_guard.Usage]] = []

    with pytest.raises(ImageRejected, match=r"^image takes too long to decode \(limit 1 s of CPU\)$"):
        imaging.process_guarded(
            samples.jpeg_scan_bomb(4000, 3000, 34_000),
            declared_type="image/jpeg",
            limits=NO_LIMITS,
            budget=decode_guard.Budget(cpu_seconds=1),
            on_decode=recorded(outcomes),
        )

    [(outcome, usage)] = outcomes
    assert outcome == "too-slow"
    assert 0.9 <= usage.cpu_seconds < 2.5  # SIGXCPU at the soft limit, SIGKILL a second later at the latest


def test_a_decode_past_its_memory_budget_is_stopped(parent_state: None) -> None:
    # 64 MP of RGBA: 256 MB decoded, with the estimate lifted, so the allocations themselves fail in the child. The
    # child may also reuse free heap it inherits (RLIMIT_DATA counts growth only), so the image is far over budget.
    outcomes: list[tuple[str, decode_guard.Usage]] = []

    with pytest.raises(ImageRejected, match=r"^image needs too much memory to decode \(limit 48 MB\)$"):
        imaging.process_guarded(
            samples.png(8000, 8000, colour_type=6),
            declared_type="image/png",
            limits=NO_LIMITS,
            budget=decode_guard.Budget(memory_bytes=48 << 20),
            on_decode=recorded(outcomes),
        )

    [(outcome, usage)] = outcomes
    assert outcome == "too-much-memory"
    assert usage.added_bytes < 256 << 20


def test_memory_the_child_reuses_from_the_workers_free_heap_counts_against_its_budget(parent_state: None) -> None:
    # RLIMIT_DATA sees only a data segment that grows; heap the worker freed but malloc kept is handed to the child
    # first, without growing anything. Chunks below malloc's mmap threshold, held in place by one live chunk above.
    freed = [bytes(60_000) for _ in range(3000)]
    kept_above = bytes(60_000)
    del freed

    def reuse_the_free_heap() -> bytes:
        hoard = [bytearray(60_000) for _ in range(2500)]  # 150 MB, every page touched
        return bytes(len(hoard))

    with pytest.raises(decode_guard.MemoryLimitExceeded) as stopped:
        decode_guard.run(reuse_the_free_heap, decode_guard.Budget(memory_bytes=64 << 20))

    assert stopped.value.usage.added_bytes < 150 << 20
    assert kept_above


def test_a_decode_that_neither_computes_nor_ends_is_stopped_at_the_deadline(
    parent_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imaging, "process", lambda *args, **kwargs: time.sleep(60))
    outcomes: list[tuple[str, decode_guard.Usage]] = []
    started = time.perf_counter()

    with pytest.raises(ImageRejected, match="image takes too long to decode"):
        imaging.process_guarded(
            samples.encode(Image.new("RGB", (8, 8)), "JPEG"),
            declared_type="image/jpeg",
            budget=decode_guard.Budget(wall_seconds=0.5),
            on_decode=recorded(outcomes),
        )

    assert time.perf_counter() - started < 5
    assert [outcome for outcome, _ in outcomes] == ["too-slow"]


def test_a_decoder_crash_rejects_the_file_and_spares_the_worker(
    parent_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imaging, "process", lambda *args, **kwargs: os.abort())  # SIGABRT, as a failed C assert
    outcomes: list[tuple[str, decode_guard.Usage]] = []

    with pytest.raises(ImageRejected, match=r"^file could not be decoded$"):
        imaging.process_guarded(
            samples.encode(Image.new("RGB", (8, 8)), "JPEG"), declared_type="image/jpeg", on_decode=recorded(outcomes)
        )

    assert [outcome for outcome, _ in outcomes] == ["crashed"]


def test_a_bug_in_the_child_fails_the_delivery_with_its_traceback(
    parent_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(*args: Any, **kwargs: Any) -> None:
        raise TypeError("a bug, not the file's fault")

    monkeypatch.setattr(imaging, "process", buggy)
    outcomes: list[tuple[str, decode_guard.Usage]] = []

    with pytest.raises(decode_guard.ChildFailed, match="TypeError: a bug, not the file's fault"):
        imaging.process_guarded(
            samples.encode(Image.new("RGB", (8, 8)), "JPEG"), declared_type="image/jpeg", on_decode=recorded(outcomes)
        )

    assert [outcome for outcome, _ in outcomes] == ["failed"]


def test_the_guard_carries_results_larger_than_a_pipe_holds(parent_state: None) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: sixteen times a Linux pipe's buffer

    result, usage = decode_guard.run(lambda: payload)

    assert result == payload
    assert usage.wall_seconds < decode_guard.WALL_SECONDS


def test_a_content_type_mismatch_is_refused_without_forking(monkeypatch: pytest.MonkeyPatch) -> None:
    forks = spy(monkeypatch, os, "fork")

    with pytest.raises(ImageRejected, match="declared image/png but the file is image/jpeg"):
        imaging.process_guarded(samples.encode(Image.new("RGB", (8, 8)), "JPEG"), declared_type="image/png")

    assert forks == []


# --- HEIC support loads only when needed ----------------------------------------------------------------------

LAZY_HEIF_PROBE = """
import json, sys
from pathlib import Path
from chalicelib import imaging
jpeg, heic = (Path(p).read_bytes() for p in sys.argv[1:3])
loaded = ["pillow_heif" in sys.modules]
imaging.process(jpeg, declared_type="image/jpeg")
loaded.append("pillow_heif" in sys.modules)
result = imaging.process(heic, declared_type="image/heic")
loaded.append("pillow_heif" in sys.modules)
print(json.dumps({"loaded": loaded, "size": [result.width, result.height]}))
"""


def test_heic_support_is_loaded_only_when_a_heic_arrives(heic_encoding: None, tmp_path: Path) -> None:
    jpeg, heic = tmp_path / "photo.jpg", tmp_path / "photo.heic"
    jpeg.write_bytes(samples.encode(Image.new("RGB", (8, 8)), "JPEG"))
    heic.write_bytes(samples.heic(Image.new("RGB", (64, 48), ORANGE)))

    probe = subprocess.run(
        [sys.executable, "-c", LAZY_HEIF_PROBE, str(jpeg), str(heic)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {"loaded": [False, False, True], "size": [64, 48]}
