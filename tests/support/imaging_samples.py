"""Images for the imaging tests, all made here: drawn with Pillow or written byte by byte, never downloaded."""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib
from typing import Any

from PIL import ExifTags, Image, ImageCms, ImageDraw

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREY = (128, 128, 128)
WHITE = (255, 255, 255)


def encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def heic(image: Image.Image, *, exif: Image.Exif | None = None) -> bytes:
    """Encoded by pillow-heif directly, so the tests never register its Pillow opener behind imaging's back."""
    import pillow_heif

    buffer = io.BytesIO()
    options: dict[str, Any] = {"exif": exif.tobytes()} if exif is not None else {}
    pillow_heif.from_pillow(image).save(buffer, quality=80, **options)
    return buffer.getvalue()


def heic_encoding_unavailable() -> str | None:
    """Why HEIC samples cannot be made here (no HEVC encoder in this libheif build), or None when they can."""
    import pillow_heif

    if not pillow_heif.libheif_info().get("HEIF"):
        return "this libheif build has no HEVC encoder, so no HEIC sample can be generated"
    return None


def marked(size: tuple[int, int]) -> Image.Image:
    """Grey, with a red block in the top-left corner and a blue one in the top-right: every orientation differs."""
    width, height = size
    block = max(1, min(width, height) // 4)
    image = Image.new("RGB", size, GREY)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, block - 1, block - 1), fill=RED)
    draw.rectangle((width - block, 0, width - 1, block - 1), fill=BLUE)
    return image


def corner_colours(image: Image.Image) -> dict[str, str]:
    """The named colour nearest to each corner: {"top-left": "red", ...}."""
    rgb = image.convert("RGB")
    inset_x, inset_y = max(0, rgb.width // 16), max(0, rgb.height // 16)
    corners = {
        "top-left": (inset_x, inset_y),
        "top-right": (rgb.width - 1 - inset_x, inset_y),
        "bottom-left": (inset_x, rgb.height - 1 - inset_y),
        "bottom-right": (rgb.width - 1 - inset_x, rgb.height - 1 - inset_y),
    }
    return {corner: nearest_colour_name(rgb.getpixel(xy)) for corner, xy in corners.items()}


def nearest_colour_name(pixel: Any) -> str:
    named = {"red": RED, "blue": BLUE, "grey": GREY, "white": WHITE}
    return min(named, key=lambda name: sum((a - b) ** 2 for a, b in zip(pixel, named[name], strict=True)))


def exif(
    *,
    orientation: int | None = None,
    taken: str | None = None,
    offset: str | None = None,
    gps: bool = False,
) -> Image.Exif:
    data = Image.Exif()
    if orientation is not None:
        data[ExifTags.Base.Orientation] = orientation
    photo: dict[int, Any] = {}
    if taken is not None:
        photo[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        photo[ExifTags.Base.OffsetTimeOriginal] = offset
    if photo:
        data[ExifTags.IFD.Exif] = photo
    if gps:
        data[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (51.0, 30.0, 26.0),
            ExifTags.GPS.GPSLongitudeRef: "W",
            ExifTags.GPS.GPSLongitude: (0.0, 7.0, 39.0),
        }
    return data


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def profile_claiming(colour_space: bytes) -> bytes:
    """A bare ICC header naming a colour space: enough for any reader to tell what the profile is for."""
    header = bytearray(128)
    header[0:4] = struct.pack(">I", 128)
    header[12:16] = b"prtr"
    header[16:20] = colour_space
    header[20:24] = b"Lab "
    header[36:40] = b"acsp"
    return bytes(header)


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Incompressible content, so a file cut in half really loses half of its pixels."""
    bands = [Image.effect_noise(size, 80) for _ in Image.new(mode, (1, 1)).getbands()]
    return Image.merge(mode, bands)


def animated(image_format: str, colours: list[tuple[int, int, int]], size: tuple[int, int] = (32, 24)) -> bytes:
    frames = [Image.new("RGB", size, colour) for colour in colours]
    if image_format == "GIF":
        frames = [frame.convert("P") for frame in frames]
    return encode(frames[0], image_format, save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@functools.cache
def blank_bilevel_png(width: int, height: int) -> bytes:
    """A genuine, fully decodable 1-bit PNG of all black: a few KB on disk however many pixels it declares."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    compressor = zlib.compressobj(9)
    rows_per_block = max(1, 4_000_000 // len(row))
    idat = b"".join(
        compressor.compress(row * min(rows_per_block, height - start)) for start in range(0, height, rows_per_block)
    )
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_declaring_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim another size; its scan data is left as is."""
    data = bytearray(encode(Image.new("RGB", (16, 16), GREY), "JPEG"))
    start_of_frame = data.index(b"\xff\xc0")
    # SOF0: marker, length (2), precision (1), height (2), width (2)
    data[start_of_frame + 5 : start_of_frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# A 1×1 GIF screen with a two-colour palette, and a 1×1 frame: descriptor, LZW code size, one sub-block, end.
_GIF_SCREEN = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
_GIF_PIXELS = b"\x02\x02\x44\x01\x00"


def _gif_frame_descriptor(width: int, height: int) -> bytes:
    return b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)


def gif_with_oversized_frame(frame_size: tuple[int, int]) -> bytes:
    """A 1×1 GIF screen whose first frame claims to be far larger: readers grow the canvas to fit it."""
    return _GIF_SCREEN + _gif_frame_descriptor(*frame_size) + _GIF_PIXELS + b";"


def gif_cut_inside_its_second_frame() -> bytes:
    """One whole frame, then the file ends right after the second frame's descriptor."""
    return _GIF_SCREEN + _gif_frame_descriptor(1, 1) + _GIF_PIXELS + _gif_frame_descriptor(1, 1)


def random_bytes(count: int, *, seed: int) -> bytes:
    return random.Random(seed).randbytes(count)  # noqa: S311 - reproducible junk, not a secret
