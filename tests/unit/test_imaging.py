"""The upload worker's image checks and previews, on images generated in the tests (see imaging_samples)."""

from __future__ import annotations

import functools
import io
import json
import random
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from chalicelib import imaging
from chalicelib.imaging import ImageRejected, process, sniff_content_type
from chalicelib.photos import models as photo_models
from tests.support import imaging_samples as samples

PROJECT_DIR = Path(__file__).resolve().parents[2]


def opened_preview(preview: imaging.Preview) -> Image.Image:
    image = Image.open(io.BytesIO(preview.data))
    assert image.format == "JPEG"
    assert image.size == (preview.width, preview.height)
    return image


def pixel(preview: imaging.Preview, xy: tuple[int, int]) -> tuple[int, ...]:
    value = opened_preview(preview).convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


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


def test_previews_carry_no_exif_gps_xmp_or_comment_but_keep_the_colour_profile() -> None:
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

    result = process(data, declared_type="image/jpeg")

    for preview in (result.large, result.small):
        opened = opened_preview(preview)
        assert not {"exif", "xmp", "comment"} & opened.info.keys()
        assert len(opened.getexif()) == 0
        for leak in (b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/", b"home address", b"secret comment"):
            assert leak not in preview.data
        assert opened.info.get("icc_profile") == profile


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
