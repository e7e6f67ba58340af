"""Image checks and previews for the upload worker: pure functions on bytes, no AWS, no I/O.

`process` proves an upload is the image it claims to be and renders two JPEG previews from one reduced decode.
Only the worker imports this module: Pillow must never load on the API's cold path.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

# The plugins we decode with are imported by name so they are registered up front: `Image.open(formats=[...])`
# naming an unregistered one imports every plugin Pillow has (measured: ~100 ms of cold start for a WebP).
# The `formats=` argument, not this list, is what keeps other decoders away from the bytes.
from PIL import (
    ExifTags,
    GifImagePlugin,  # noqa: F401
    Image,
    ImageFile,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from chalicelib.clock import iso_utc

# Each accepted content type and the one Pillow decoder allowed to read it.
_PILLOW_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/heic": "HEIF",
}
ALLOWED_CONTENT_TYPES: frozenset[str] = frozenset(_PILLOW_FORMAT)
LARGE_EDGE = 1024
SMALL_EDGE = 256
JPEG_QUALITY = 82
DEFAULT_MAX_PIXELS = 100_000_000  # phones make 50–200 MP now; bombs are far beyond
# Every signature `sniff_content_type` knows fits in this many leading bytes (an ISO-BMFF brand list included).
SNIFF_BYTES = 64

_TYPE_NAME = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "image/gif": "GIF", "image/heic": "HEIC"}
_SUPPORTED_NAMES = "JPEG, PNG, WebP, GIF or HEIC"
# A JPEG's "frames" are MPO side images (depth maps, stereo pairs) and a HEIC's are bursts: not animation.
_ANIMATABLE = frozenset({"image/gif", "image/webp", "image/png"})

# HEVC-coded HEIF brands and the generic image/sequence ones; AVIF shares the generic brands, so its own brands
# are looked for first (we have no AV1 decoder, and the file is not image/heic).
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# What Pillow and pillow-heif raise for bytes that are not a well-formed image: broken headers (SyntaxError,
# struct.error, UnidentifiedImageError), truncated data (OSError, EOFError; IndexError where a plugin indexes a
# read that came back empty, as the GIF frame walk does) and impossible values (ValueError). Only Pillow's
# parsing runs inside the blocks that catch these. MemoryError and programming errors (TypeError, KeyError…)
# are not the file's fault: they must reach the worker's error handling, not be reported as a bad photo.
_MALFORMED_FILE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
)
# libheif's own failures reach Python as RuntimeError, its security limits (pixels, items) tripping included.
_MALFORMED_HEIC_ERRORS: tuple[type[Exception], ...] = (*_MALFORMED_FILE_ERRORS, RuntimeError)
_TOO_MANY_PIXELS_ERRORS: tuple[type[Exception], ...] = (Image.DecompressionBombError, Image.DecompressionBombWarning)

# EXIF orientation → the transpose that makes the image upright (the table ImageOps.exif_transpose uses).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_EDGES = frozenset({5, 6, 7, 8})
_EXIF_DATE_TIME_ORIGINAL = 0x9003
_EXIF_OFFSET_TIME_ORIGINAL = 0x9011
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
# Wide-gamut phone photos need their profile to look right; a "profile" bigger than any real one is just a way
# to bloat every preview.
_MAX_ICC_PROFILE_BYTES = 256 * 1024


class ImageRejected(Exception):
    """The upload is not an image we accept; `reason` is short and safe to show the photo's owner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Preview:
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedImage:
    content_type: str
    width: int
    height: int
    taken_at: str | None
    large: Preview
    small: Preview
    frames: int


def sniff_content_type(head: bytes) -> str | None:
    """The content type the leading bytes prove, or None for anything we do not accept (SVG, HTML, AVIF…)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    return None


def _sniff_iso_bmff(head: bytes) -> str | None:
    (box_size,) = struct.unpack(">I", head[:4])
    if box_size < 16:
        return None
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)]
    brands = {major, *compatible}
    if brands & _HEVC_BRANDS:
        return "image/heic"
    if brands & _AVIF_BRANDS:
        return None
    if brands & _GENERIC_HEIF_BRANDS:
        return "image/heic"
    return None


def process(data: bytes, *, declared_type: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ProcessedImage:
    """Check an upload and render its previews, or raise ImageRejected saying why it is not acceptable."""
    content_type = _checked_content_type(data, declared_type)
    malformed_file_errors = _MALFORMED_HEIC_ERRORS if content_type == "image/heic" else _MALFORMED_FILE_ERRORS
    # A bomb warning must stop the work, not scroll past in a log. Pillow's other warnings are about damage it
    # worked around (a corrupt EXIF block): noise in the worker's log, since the outcome is what counts.
    # catch_warnings restores the filters after, so no other code in the process sees the change.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_within_budget(data, content_type, max_pixels, malformed_file_errors) as image:
            width, height = image.size
            # Ask the JPEG decoder for the smallest DCT scale that still covers the large preview. Uniform scaling
            # keeps the aspect ratio, so this one target is right before and after any EXIF rotation.
            draft_size = _fit_within((width, height), LARGE_EDGE)
            try:
                frames: int = getattr(image, "n_frames", 1) if content_type in _ANIMATABLE else 1
                image.draft("RGB", draft_size)
                image.load()
            except _TOO_MANY_PIXELS_ERRORS as e:
                raise ImageRejected(_too_large_reason(max_pixels)) from e
            except malformed_file_errors as e:
                raise ImageRejected("file is truncated or corrupt") from e
            orientation, taken_at = _orientation_and_taken_at(image)
            icc_profile = _rgb_icc_profile(image)
            large = _upright_rgb(_resized(_rasterisable(image), LARGE_EDGE), orientation)
    small = _resized(large, SMALL_EDGE)
    if orientation in _SWAPS_EDGES:
        width, height = height, width
    return ProcessedImage(
        content_type=content_type,
        width=width,
        height=height,
        taken_at=taken_at,
        large=_jpeg_preview(large, icc_profile),
        small=_jpeg_preview(small, icc_profile),
        frames=frames,
    )


def _checked_content_type(data: bytes, declared_type: str) -> str:
    if not data:
        raise ImageRejected("file is empty")
    content_type = sniff_content_type(data[:SNIFF_BYTES])
    if content_type is None:
        raise ImageRejected(f"not an image we accept ({_SUPPORTED_NAMES})")
    # Content-Type headers are case-insensitive and may carry parameters ("image/jpeg; charset=binary"). The
    # uploader chose this value, so it is cut short before it goes into a message.
    declared = declared_type.split(";", 1)[0].strip().lower()
    if declared != content_type:
        raise ImageRejected(f"declared {declared[:64]} but the file is {content_type}")
    return content_type


def _open_within_budget(
    data: bytes, content_type: str, max_pixels: int, malformed_file_errors: tuple[type[Exception], ...]
) -> ImageFile.ImageFile:
    """Parse only the header, with only the sniffed type's decoder, and refuse images over the pixel budget."""
    pillow_format = _PILLOW_FORMAT[content_type]
    if pillow_format == "HEIF":
        _register_heif_opener()
    type_name = _TYPE_NAME[content_type]
    with warnings.catch_warnings():
        # Pillow warns from its own global threshold (89.5 MP by default) right after reading the header. When the
        # caller's budget is larger, that warning would reject photos the budget allows; our check just below
        # enforces the budget instead. Pillow's hard limit (twice its threshold) still applies either way.
        if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[pillow_format])
        except _TOO_MANY_PIXELS_ERRORS as e:
            raise ImageRejected(_too_large_reason(max_pixels)) from e
        except malformed_file_errors as e:
            raise ImageRejected(f"file is not a readable {type_name} image (its header is damaged)") from e
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageRejected(_too_large_reason(max_pixels, (width, height)))
    return image


@functools.cache
def _register_heif_opener() -> None:
    # Deferred: pillow-heif and libheif load only when a HEIC actually arrives.
    import pillow_heif

    pillow_heif.register_heif_opener()


def _too_large_reason(max_pixels: int, size: tuple[int, int] | None = None) -> str:
    limit = f"limit {max_pixels / 1_000_000:.3g} megapixels"
    if size is None:
        return f"image is too large ({limit})"
    return f"image is too large ({size[0]}×{size[1]} pixels, {limit})"


def _fit_within(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """The size that fits an edge×edge box with the same aspect ratio; never larger, never below 1 px."""
    width, height = size
    longest = max(width, height)
    if longest <= edge:
        return size
    return max(1, round(width * edge / longest)), max(1, round(height * edge / longest))


def _orientation_and_taken_at(image: Image.Image) -> tuple[int, str | None]:
    # Metadata is a bonus, not a reason to refuse a photo: an unreadable EXIF block counts as no EXIF.
    try:
        exif = image.getexif()
        orientation = exif.get(ExifTags.Base.Orientation)
        photo_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except _MALFORMED_FILE_ERRORS:
        return 1, None
    return (orientation if orientation in _UPRIGHT else 1), _taken_at(photo_ifd)


def _taken_at(photo_ifd: dict[int, object]) -> str | None:
    """EXIF DateTimeOriginal as ISO-8601 UTC; a missing or unreadable offset means the clock was on UTC."""
    local = photo_ifd.get(_EXIF_DATE_TIME_ORIGINAL)
    if not isinstance(local, str):
        return None
    try:
        moment = datetime.strptime(local.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:  # cameras without a clock write "0000:00:00 00:00:00" or blanks
        return None
    return iso_utc(moment.replace(tzinfo=_utc_offset(photo_ifd.get(_EXIF_OFFSET_TIME_ORIGINAL))))


def _utc_offset(value: object) -> timezone:
    match = _EXIF_OFFSET.fullmatch(value.strip("\x00 ")) if isinstance(value, str) else None
    if match is None:
        return UTC
    sign, hours, minutes = match.groups()
    if int(hours) > 23 or int(minutes) > 59:
        return UTC
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-offset if sign == "-" else offset)


def _rasterisable(image: Image.Image) -> Image.Image:
    """The decoded image in a mode that resamples well: L, RGB, RGBA or CMYK, 8 bits per channel."""
    if image.mode.startswith("I"):
        # 16-bit greyscale: a plain convert("L") clips everything above 255 to white; rescale the range instead.
        return image.point(lambda value: value / 257).convert("L")
    if image.mode in ("RGBA", "L", "RGB", "CMYK") and "transparency" not in image.info:
        return image  # converting to the same mode would still copy every pixel
    if image.has_transparency_data:
        return image.convert("RGBA")
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # P without transparency, YCbCr…


def _resized(image: Image.Image, edge: int) -> Image.Image:
    size = _fit_within(image.size, edge)
    if size == image.size:
        return image
    # reducing_gap lets Pillow box-reduce by an integer factor before Lanczos: much faster on big PNGs and WebPs,
    # indistinguishable at preview sizes.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _upright_rgb(image: Image.Image, orientation: int) -> Image.Image:
    if image.mode == "RGBA":
        flattened = Image.new("RGB", image.size, "white")
        flattened.paste(image, mask=image.getchannel("A"))
        image = flattened
    elif image.mode != "RGB":
        image = image.convert("RGB")
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    return image


def _rgb_icc_profile(image: Image.Image) -> bytes | None:
    # Previews are RGB: a CMYK or grey profile would make browsers misread them, so only an RGB one travels.
    profile = image.info.get("icc_profile")
    if isinstance(profile, bytes) and len(profile) <= _MAX_ICC_PROFILE_BYTES and profile[16:20] == b"RGB ":
        return profile
    return None


def _jpeg_preview(image: Image.Image, icc_profile: bytes | None) -> Preview:
    # Pillow's JPEG writer falls back to image.info for some metadata (the comment), and info travels through
    # resize and convert: start from nothing so no EXIF, GPS, XMP or comment of the original can leak.
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True, icc_profile=icc_profile)
    return Preview(data=buffer.getvalue(), width=image.width, height=image.height)
