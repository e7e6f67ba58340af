"""Image checks and previews for the upload worker: pure functions on bytes, no AWS, no I/O.

`process` proves an upload is the image it claims to be and renders two previews (WebP; JPEG where Pillow cannot
write WebP) from one reduced decode.
Before any pixel is decoded it bounds what the decode will cost: the file's structure is walked (scans, chunks,
frames, items; never pixels) and refused past `DecodeLimits`, and the decode's peak memory is estimated from the
mode and size and refused past the memory budget. `process_guarded`, what the worker runs, does the same in a
forked child under a CPU and memory limit (`decode_guard`), the last line for what the checks do not foresee.
Only the worker imports this module: Pillow must never load on the API's cold path.
"""

from __future__ import annotations

import functools
import io
import json
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

# The plugins we decode with are imported by name so they are registered up front: `Image.open(formats=[...])`
# naming an unregistered one imports every plugin Pillow has (measured: ~100 ms of cold start for a WebP).
# The `formats=` argument, not this list, is what keeps other decoders away from the bytes.
# Modules Pillow would otherwise import on first use (EXIF parsing, colour names, palettes) are imported here too:
# the guarded decode runs in a forked child, which must not import anything while another thread might hold the lock.
from PIL import (
    ExifTags,
    GifImagePlugin,  # noqa: F401
    Image,
    ImageColor,  # noqa: F401
    ImageFile,
    ImagePalette,  # noqa: F401
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
    features,
)

from chalicelib import decode_guard
from chalicelib.clock import iso_utc
from chalicelib.photos.models import PreviewFormat

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
# WebP at the qualities whose luma SSIM matches JPEG q82's on most photos (docs/PERFORMANCE.md section 10: 20% fewer
# bytes at 1024 px, 27% at 256 px), at libwebp's effort 4 (Pillow's default, what the bench measured).
WEBP_LARGE_QUALITY = 87
WEBP_SMALL_QUALITY = 82
WEBP_METHOD = 4
# What new previews are made as. The Lambda layer's Pillow wheel writes WebP; a Pillow built without libwebp falls
# back to JPEG, and the photo records which (old photos' previews are JPEG and stay so).
PREVIEW_FORMAT = PreviewFormat.WEBP if features.check("webp") else PreviewFormat.JPEG
DEFAULT_MAX_PIXELS = 100_000_000  # phones make 50–200 MP now; bombs are far beyond
# Every signature `sniff_content_type` knows fits in this many leading bytes (an ISO-BMFF brand list included).
SNIFF_BYTES = 64

_TYPE_NAME = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "image/gif": "GIF", "image/heic": "HEIC"}
_SUPPORTED_NAMES = "JPEG, PNG, WebP, GIF or HEIC"

# HEVC-coded HEIF brands and the generic image/sequence ones; AVIF shares the generic brands, so its own brands
# are looked for first (we have no AV1 decoder, and the file is not image/heic).
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# What Pillow and pillow-heif raise for bytes that are not a well-formed image: broken headers (SyntaxError,
# struct.error, UnidentifiedImageError), truncated data (OSError, EOFError; IndexError where a plugin indexes a
# read that came back empty, as the GIF reader does) and impossible values (ValueError). Only Pillow's
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


@dataclass(frozen=True)
class DecodeLimits:
    """What decoding one upload may cost, checked from the file's structure before a pixel is decoded.

    Each figure bounds work that neither the pixel cap nor the upload size bounds (decode time that grows with the
    number of scans, chunks or frames; memory that grows with the mode and the canvas rather than the file), and
    each is several times what real files need, as noted. Measured worst cases are in the comments; the test
    suite holds a file just inside and just outside each limit.
    """

    # Peak memory of one decode, estimated from the size and mode before decoding: the guard's budget.
    memory_bytes: int = decode_guard.MEMORY_BYTES
    # Progressive scans. libjpeg writes 10 (6 for greyscale, 18 for CMYK), mozjpeg's optimised scripts 10-20;
    # scan bombs (libjpeg-turbo's LJT-01-003) repeat thousands. NVIDIA DALI stops at 500.
    jpeg_scans: int = 100
    # 8×8 blocks decoded, summed over every scan: the decode time. libjpeg's 10-scan progression of a 100 MP 4:4:4
    # JPEG needs 22 M; the costliest scans take ~44 ns a block, so 100 M stays under ~5 s of CPU.
    jpeg_block_scans: int = 100_000_000
    # Marker segments. Real files: a dozen, plus up to 255 ICC chunks and ~400 APP1s for a 25 MB extended XMP.
    # Pillow parses those before the first scan in Python, ~1 µs each: 6 million empty ones took 6-8 s and 440 MB.
    jpeg_segments: int = 1_000
    # Bytes outside any segment before the first scan (fill 0xFFs, junk): Pillow skips them one at a time in
    # Python, ~0.5 µs each (24 MB of fill bytes took 10-14 s). Real files have none, or a few from a sloppy writer.
    jpeg_stray_bytes: int = 64 * 1024
    # PNG chunks of any kind. libpng writes 8 KB IDATs (3,200 for 25 MB); this allows one IDAT per row of a
    # 100,000-row image. Pillow spends 2-4 µs on each: 2 million empty chunks took 7-8 s and 230 MB.
    png_chunks: int = 100_000
    # PNG ancillary chunks other than APNG's, and WebP chunks other than frames: text, colour, EXIF, private ones.
    # Real files have a handful to dozens.
    metadata_chunks: int = 1_000
    # GIF data sub-blocks: encoders write 255-byte ones, so 25 MiB is ~103,000. Pillow keeps each sub-block of a
    # comment as its own object: 12 million one-byte ones took 1 GB.
    gif_sub_blocks: int = 400_000
    # Bytes between GIF blocks that are none of them: Pillow skips them one at a time in Python.
    gif_stray_bytes: int = 64 * 1024
    # Frames of a GIF, WebP or APNG: 5.5 minutes at 30 fps. Pillow's frame count walks every GIF frame in Python.
    frames: int = 10_000
    # Frames' areas summed: what a viewer decoding the whole animation (a browser showing the original) does;
    # 4 G pixels is about a minute of 1080p at 30 fps.
    animation_pixels: int = 4_000_000_000
    # HEIF items (tiles, thumbnails, EXIF, auxiliary images). A 48 MP iPhone photo has ~60; libheif stops at 1,000.
    heic_items: int = 1_000
    # Pixels libheif decodes for the primary image: its tiles (decoded whole, then cropped) and auxiliary images.
    # A 100 MP grid of 512² tiles decodes 105 MP; tiles far larger than the image they crop to are a bomb.
    heic_decoded_pixels: int = 150_000_000


DEFAULT_LIMITS = DecodeLimits()


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
    preview_format: PreviewFormat


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


def process(
    data: bytes,
    *,
    declared_type: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limits: DecodeLimits = DEFAULT_LIMITS,
    preview_format: PreviewFormat | None = None,
) -> ProcessedImage:
    """Check an upload and render its previews (in `preview_format`, by default `PREVIEW_FORMAT`), or raise
    ImageRejected saying why it is not acceptable.

    In this process and unguarded: for tests and benchmarks. The worker uses `process_guarded`."""
    preview_format = preview_format or PREVIEW_FORMAT
    content_type = _checked_content_type(data, declared_type)
    structure = _checked_structure(data, content_type, limits)
    if structure.canvas is not None:
        _check_canvas(structure.canvas, content_type, max_pixels, limits)
    malformed_file_errors = _MALFORMED_HEIC_ERRORS if content_type == "image/heic" else _MALFORMED_FILE_ERRORS
    # A bomb warning must stop the work, not scroll past in a log. Pillow's other warnings are about damage it
    # worked around (a corrupt EXIF block): noise in the worker's log, since the outcome is what counts.
    # catch_warnings restores the filters after, so no other code in the process sees the change.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_within_budget(data, content_type, max_pixels, malformed_file_errors) as image:
            width, height = image.size
            try:
                # Ask the JPEG decoder for the smallest DCT scale that still covers the large preview. Uniform
                # scaling keeps the aspect ratio, so this one target is right before and after any EXIF rotation.
                # It only sets up the decode, so the memory estimate below sees the size really decoded.
                image.draft("RGB", _fit_within((width, height), LARGE_EDGE))
                _check_memory(image, content_type, structure, limits)
                image.load()
            except _TOO_MANY_PIXELS_ERRORS as e:
                raise ImageRejected(_too_large_reason(max_pixels)) from e
            except malformed_file_errors as e:
                raise ImageRejected("file is truncated or corrupt") from e
            orientation, taken_at = _orientation_and_taken_at(image)
            icc_profile = _rgb_icc_profile(image)
            large = _upright_rgb(_resized(_flattened(image), LARGE_EDGE), orientation)
    small = _resized(large, SMALL_EDGE)
    if orientation in _SWAPS_EDGES:
        width, height = height, width
    if preview_format is PreviewFormat.WEBP:
        large_preview = _webp_preview(large, icc_profile, quality=WEBP_LARGE_QUALITY)
        small_preview = _webp_preview(small, icc_profile, quality=WEBP_SMALL_QUALITY)
    else:
        # Progressive for the large preview: the same pixels in 3% fewer bytes (bench --only formats), and a page
        # shows a coarse image at once. Not for the small one, where it saves nothing and can cost 11%.
        large_preview = _jpeg_preview(large, icc_profile, progressive=True)
        small_preview = _jpeg_preview(small, icc_profile)
    return ProcessedImage(
        content_type=content_type,
        width=width,
        height=height,
        taken_at=taken_at,
        large=large_preview,
        small=small_preview,
        frames=structure.frames,
        preview_format=preview_format,
    )


# --- the guarded decode: what the worker runs ---------------------------------------------------------------------


class DecodeOutcome(StrEnum):
    """How a guarded decode ended, for `process_guarded`'s `on_decode` callback."""

    READY = "ready"
    REJECTED = "rejected"  # by the checks, in the child
    TOO_SLOW = "too-slow"  # stopped at the CPU budget or the wall-clock deadline
    TOO_MUCH_MEMORY = "too-much-memory"  # stopped at the memory budget
    CRASHED = "crashed"  # the decoder died on a signal
    FAILED = "failed"  # a bug: an exception other than ImageRejected


OnDecode = Callable[[DecodeOutcome, decode_guard.Usage], None]


def process_guarded(
    data: bytes,
    *,
    declared_type: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limits: DecodeLimits = DEFAULT_LIMITS,
    budget: decode_guard.Budget | None = None,
    on_decode: OnDecode | None = None,
) -> ProcessedImage:
    """`process` in a forked child that the kernel stops past `budget` (10 s of CPU and 1 GiB by default): an
    upload that would exhaust either is rejected instead of timing the worker out or running it out of memory.

    `on_decode` hears how each decode ended and what it cost (CPU seconds, peak memory), for the worker's log.
    A bug (an exception other than ImageRejected) raises `decode_guard.ChildFailed` carrying the child's
    traceback, so it fails the delivery as it would in-process; MemoryError in the child is the file's doing,
    since the child's only job is this file and its memory limit is the decode's budget.
    """
    budget = budget or decode_guard.Budget()
    content_type = _checked_content_type(data, declared_type)
    if content_type == "image/heic":
        _register_heif_opener()  # here, not in the child: once per container rather than once per decode

    def work() -> bytes:
        try:
            return _encoded(process(data, declared_type=declared_type, max_pixels=max_pixels, limits=limits))
        except ImageRejected as rejected:
            return _encoded(rejected)

    def report(outcome: DecodeOutcome, usage: decode_guard.Usage) -> None:
        if on_decode is not None:
            on_decode(outcome, usage)

    try:
        payload, usage = decode_guard.run(work, budget)
    except decode_guard.CpuLimitExceeded as e:
        report(DecodeOutcome.TOO_SLOW, e.usage)
        raise ImageRejected(f"image takes too long to decode (limit {budget.cpu_seconds} s of CPU)") from e
    except decode_guard.MemoryLimitExceeded as e:
        report(DecodeOutcome.TOO_MUCH_MEMORY, e.usage)
        raise ImageRejected(f"image needs too much memory to decode (limit {budget.memory_bytes >> 20} MB)") from e
    except decode_guard.ChildCrashed as e:
        # The decoder died on this file (a segfault, an abort): the file is what it could not handle.
        report(DecodeOutcome.CRASHED, e.usage)
        raise ImageRejected("file could not be decoded") from e
    except decode_guard.ChildFailed as e:
        report(DecodeOutcome.FAILED, e.usage)
        raise
    outcome = _decoded(payload)
    report(DecodeOutcome.REJECTED if isinstance(outcome, ImageRejected) else DecodeOutcome.READY, usage)
    if isinstance(outcome, ImageRejected):
        raise outcome
    return outcome


# The child's answer on the pipe: one line of JSON, then the two previews' bytes. Plain data, never a pickle: the
# child has just parsed hostile input.
def _encoded(outcome: ProcessedImage | ImageRejected) -> bytes:
    if isinstance(outcome, ImageRejected):
        return json.dumps({"rejected": outcome.reason}).encode() + b"\n"
    header = {
        "content_type": outcome.content_type,
        "width": outcome.width,
        "height": outcome.height,
        "taken_at": outcome.taken_at,
        "frames": outcome.frames,
        "preview_format": outcome.preview_format.value,
        "large": [outcome.large.width, outcome.large.height, len(outcome.large.data)],
        "small": [outcome.small.width, outcome.small.height, len(outcome.small.data)],
    }
    return json.dumps(header).encode() + b"\n" + outcome.large.data + outcome.small.data


def _decoded(payload: bytes) -> ProcessedImage | ImageRejected:
    line, _, previews = payload.partition(b"\n")
    try:
        header = json.loads(line)
        if "rejected" in header:
            return ImageRejected(str(header["rejected"]))
        large_width, large_height, large_bytes = (int(value) for value in header["large"])
        small_width, small_height, small_bytes = (int(value) for value in header["small"])
        if large_bytes + small_bytes != len(previews):
            raise ValueError(f"{len(previews)} bytes of previews, {large_bytes + small_bytes} announced")
        taken_at = header["taken_at"]
        return ProcessedImage(
            content_type=str(header["content_type"]),
            width=int(header["width"]),
            height=int(header["height"]),
            taken_at=None if taken_at is None else str(taken_at),
            large=Preview(previews[:large_bytes], large_width, large_height),
            small=Preview(previews[large_bytes:], small_width, small_height),
            frames=int(header["frames"]),
            preview_format=PreviewFormat(header["preview_format"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeError(f"the decoding child returned a malformed result: {e}") from e


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


# --- structure: what the decode will cost, read from the bytes without decoding ------------------------------------
# Each walker reads only headers and lengths, in time linear in the file, and stops as soon as a limit is passed, so
# Python's per-item cost is bounded by the limits rather than by what the file claims. Where the bytes stop making
# sense a walker stops counting and leaves the verdict to the decoder: it judges cost, not validity.


@dataclass(frozen=True)
class _Structure:
    # An animation's frames (GIF, WebP, APNG). A JPEG's other "frames" are MPO side images (depth maps, stereo
    # pairs) and a HEIC's are bursts: not animation, so those count 1.
    frames: int = 1
    coefficient_bytes: int = 0  # a multi-scan JPEG's whole-image coefficient buffer, which libjpeg holds throughout
    decoded_pixels: int = 0  # a HEIC's tiles and auxiliary images, when they exceed its canvas
    # A WebP's canvas: Pillow creates libwebp's decoder, which allocates the canvases, while it opens the file, so
    # this size is held to the budgets from the bytes, before Pillow sees them.
    canvas: tuple[int, int] | None = None


def _checked_structure(data: bytes, content_type: str, limits: DecodeLimits) -> _Structure:
    walk = _STRUCTURE_WALKERS[content_type]
    return walk(data, limits)


class _Counter:
    """A running count that refuses the upload the moment it passes its limit."""

    def __init__(self, limit: int, reason: str) -> None:
        self.value = 0
        self._limit = limit
        self._reason = reason

    def add(self, amount: int = 1) -> None:
        self.value += amount
        if self.value > self._limit:
            raise ImageRejected(self._reason.format(limit=self._limit))


def _animation_counters(limits: DecodeLimits) -> tuple[_Counter, _Counter]:
    frames = _Counter(limits.frames, "animation has more than {limit} frames")
    area = _Counter(limits.animation_pixels, "animation has too many pixels in all its frames (limit {limit:,})")
    return frames, area


# JPEG ----------------------------------------------------------------------------------------------------------

_JPEG_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_PROGRESSIVE_MARKERS = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_JPEG_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RST0-7: no length follows
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9
# The end of a scan's entropy-coded data: the last 0xFF before a byte that is neither a stuffed zero, a restart
# marker (RSTn belong to the scan) nor another fill 0xFF. Two bytes compared per position, so the search is linear
# however many 0xFF bytes a file holds, and the engine skips to each 0xFF fast: a look-behind at every position made
# this search over half of a 24 MP JPEG's processing (182 of 325 ms of CPU; now 4 ms).
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# The next 0xFF between segments, where libjpeg (and Pillow) resynchronise after stray bytes; fill bytes after it.
_JPEG_NEXT_FF = re.compile(rb"\xff")
_JPEG_FILL = re.compile(rb"\xff*")


@dataclass
class _JpegFrame:
    width: int
    height: int
    progressive: bool
    components: dict[int, tuple[int, int]]  # component id -> (horizontal, vertical) sampling factors

    @functools.cached_property
    def max_sampling(self) -> tuple[int, int]:
        return max(h for h, _ in self.components.values()), max(v for _, v in self.components.values())

    def mcus(self) -> tuple[int, int]:
        h_max, v_max = self.max_sampling
        return _ceil_div(self.width, 8 * h_max), _ceil_div(self.height, 8 * v_max)

    def blocks_in_scan(self, component_ids: list[int]) -> int:
        known = [self.components[c] for c in component_ids if c in self.components]
        if not known:
            return 0
        if len(component_ids) > 1:  # interleaved: whole MCUs, each holding h×v blocks of every component in it
            mcus_x, mcus_y = self.mcus()
            return mcus_x * mcus_y * sum(h * v for h, v in known)
        (h, v), (h_max, v_max) = known[0], self.max_sampling
        width, height = _ceil_div(self.width * h, h_max), _ceil_div(self.height * v, v_max)
        return _ceil_div(width, 8) * _ceil_div(height, 8)

    def coefficient_bytes(self) -> int:
        # libjpeg's whole-image coefficient arrays: each component padded to whole MCUs, 64 two-byte coefficients
        # a block.
        mcus_x, mcus_y = self.mcus()
        return sum(mcus_x * h * mcus_y * v * 128 for h, v in self.components.values())


def _jpeg_structure(data: bytes, limits: DecodeLimits) -> _Structure:
    segments = _Counter(limits.jpeg_segments, "JPEG has more than {limit} marker segments")
    scans = _Counter(limits.jpeg_scans, "JPEG has more than {limit} scans")
    blocks = _Counter(limits.jpeg_block_scans, "JPEG takes too long to decode (over {limit:,} blocks in its scans)")
    stray = _Counter(limits.jpeg_stray_bytes, "JPEG has more than {limit} stray bytes between its segments")
    frame: _JpegFrame | None = None
    position, end = 2, len(data)
    while (found := _next_jpeg_marker(data, position, stray if scans.value == 0 else None)) is not None:
        marker, position = found
        if marker == _JPEG_EOI:
            break
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        length = _read_uint(data, position, 2)
        if length < 2 or position + 2 > end:
            break
        segments.add()
        payload = data[position + 2 : position + length]
        position += length
        if marker in _JPEG_FRAME_MARKERS and frame is None:
            frame = _jpeg_frame(marker, payload)
        elif marker == _JPEG_SOS:
            scans.add()
            if frame is not None and payload:
                blocks.add(frame.blocks_in_scan(list(payload[1 : 1 + 2 * payload[0] : 2])))
            after_scan = _JPEG_MARKER_AFTER_SCAN.search(data, position)
            position = after_scan.start() if after_scan else end
    multi_scan = frame is not None and (frame.progressive or scans.value > 1)
    return _Structure(coefficient_bytes=frame.coefficient_bytes() if frame is not None and multi_scan else 0)


def _next_jpeg_marker(data: bytes, position: int, stray: _Counter | None) -> tuple[int, int] | None:
    """The next marker at or after `position` and the position after it, counting the stray and fill bytes
    skipped on the way (only Pillow's Python parse of the header, before the first scan, pays for those)."""
    end = len(data)
    while position < end:
        if data[position] != 0xFF:
            found = _JPEG_NEXT_FF.search(data, position)
            next_ff = found.start() if found else end
            if stray is not None:
                stray.add(next_ff - position)
            position = next_ff
            continue
        fill = _JPEG_FILL.match(data, position + 1)
        marker_at = fill.end() if fill else position + 1
        if stray is not None:
            stray.add(marker_at - position - 1)
        if marker_at >= end:
            return None
        if data[marker_at] != 0x00:
            return data[marker_at], marker_at + 1
        if stray is not None:  # 0xFF00 outside a scan is junk like any other
            stray.add(2)
        position = marker_at + 1
    return None


def _jpeg_frame(marker: int, payload: bytes) -> _JpegFrame | None:
    if len(payload) < 6:
        return None
    _, height, width, count = struct.unpack_from(">BHHB", payload)
    components = {}
    for offset in range(6, min(len(payload), 6 + 3 * count) - 2, 3):
        sampling = payload[offset + 1]
        components[payload[offset]] = (max(1, sampling >> 4), max(1, sampling & 0x0F))
    if not components:
        return None
    return _JpegFrame(width, height, marker in _JPEG_PROGRESSIVE_MARKERS, components)


# PNG -----------------------------------------------------------------------------------------------------------

_PNG_IMAGE_DATA = frozenset({b"IDAT", b"fdAT"})


def _png_structure(data: bytes, limits: DecodeLimits) -> _Structure:
    chunks = _Counter(limits.png_chunks, "PNG has more than {limit} chunks")
    metadata = _Counter(limits.metadata_chunks, "PNG has more than {limit} metadata chunks")
    frames, area = _animation_counters(limits)
    animated = False
    position, end = 8, len(data)
    while position + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks.add()
        body = position + 8
        if kind == b"IEND":
            break
        if kind == b"fcTL" and body + 12 <= end:
            width, height = struct.unpack_from(">II", data, body + 4)
            frames.add()
            area.add(width * height)
        elif kind == b"acTL":
            animated = True
        elif kind[0] & 0x20 and kind not in _PNG_IMAGE_DATA:  # ancillary (a lowercase first letter)
            metadata.add()
        position = body + length + 4  # the payload, then its CRC
    # Without acTL a PNG is a still image whatever fcTL chunks it carries (Pillow ignores them too).
    return _Structure(frames=max(1, frames.value) if animated else 1)


# GIF -----------------------------------------------------------------------------------------------------------

_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B
_GIF_NEXT_BLOCK = re.compile(rb"[\x21\x2c\x3b]")


def _gif_structure(data: bytes, limits: DecodeLimits) -> _Structure:
    """Frames counted by walking the blocks (Pillow's own count seeks through every frame in Python)."""
    sub_blocks = _Counter(limits.gif_sub_blocks, "GIF has more than {limit} data blocks")
    stray = _Counter(limits.gif_stray_bytes, "GIF has more than {limit} stray bytes between its blocks")
    frames, area = _animation_counters(limits)
    end = len(data)
    if end < 13:
        return _Structure()
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    while position < end:
        introducer = data[position]
        if introducer == _GIF_TRAILER:
            break
        if introducer == _GIF_EXTENSION:
            position = _skip_gif_sub_blocks(data, position + 2, sub_blocks)
        elif introducer == _GIF_IMAGE:
            if position + 10 > end:
                raise ImageRejected("file is truncated or corrupt")
            width, height, frame_flags = struct.unpack_from("<HHB", data, position + 5)
            frames.add()
            area.add(width * height)
            position += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
            position = _skip_gif_sub_blocks(data, position + 1, sub_blocks)  # after the LZW code size
        else:  # junk: Pillow steps over it a byte at a time, looking for the next block
            found = _GIF_NEXT_BLOCK.search(data, position)
            next_block = found.start() if found else end
            stray.add(next_block - position)
            position = next_block
    return _Structure(frames=max(1, frames.value))


def _skip_gif_sub_blocks(data: bytes, position: int, counter: _Counter) -> int:
    """The position after a chain of sub-blocks (each a length byte and that many bytes, a zero length ending it).
    A chain the file cuts short is a truncated frame: refused here, as Pillow's frame count used to."""
    end = len(data)
    while position < end:
        size = data[position]
        position += 1 + size
        if size == 0:
            return position
        counter.add()
    raise ImageRejected("file is truncated or corrupt")


# WebP ----------------------------------------------------------------------------------------------------------


def _webp_structure(data: bytes, limits: DecodeLimits) -> _Structure:
    metadata = _Counter(limits.metadata_chunks, "WebP has more than {limit} metadata chunks")
    frames, area = _animation_counters(limits)
    if len(data) < 12:
        return _Structure()
    (riff_size,) = struct.unpack_from("<I", data, 4)
    position, end = 12, min(len(data), 8 + riff_size)
    canvas = _webp_canvas(data)
    while position + 8 <= end:
        kind, size = struct.unpack_from("<4sI", data, position)
        body = position + 8
        if kind == b"ANMF" and body + 12 <= end:
            # Frame x/2, y/2, width-1, height-1, each 24 bits.
            width = 1 + int.from_bytes(data[body + 6 : body + 9], "little")
            height = 1 + int.from_bytes(data[body + 9 : body + 12], "little")
            frames.add()
            area.add(width * height)
        else:
            metadata.add()
        position = body + size + (size & 1)  # chunks are padded to an even length
    return _Structure(frames=max(1, frames.value), canvas=canvas)


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas size the first chunk declares (what libwebp allocates), or None if it cannot be read."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:  # extended: the canvas, 24-bit width-1 and height-1
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":  # lossy: after the start code
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:  # lossless: 14-bit width-1 and height-1
        (bits,) = struct.unpack_from("<I", data, 21)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


# HEIC (ISO base media file format) -----------------------------------------------------------------------------

_HEIF_DERIVED_ITEMS = frozenset({b"grid", b"iovl", b"iden"})  # built from other items (through 'dimg' references)
_HEIF_MAX_DERIVATION_DEPTH = 8


@dataclass
class _HeifItems:
    primary: int | None = None
    types: dict[int, bytes] = field(default_factory=dict)
    derived_from: dict[int, list[int]] = field(default_factory=dict)  # 'dimg': an item -> the items it is built from
    auxiliary_of: dict[int, list[int]] = field(default_factory=dict)  # 'auxl': an item -> its auxiliary images
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # from each item's 'ispe' property


def _heic_structure(data: bytes, limits: DecodeLimits) -> _Structure:
    """The pixels libheif will decode for the primary image: its coded items (a grid's tiles, decoded whole) and
    the auxiliary images attached to it (alpha, depth), each at the size its 'ispe' property declares."""
    # Every box and table entry walked counts against one budget, so no part of the file can make this slow.
    steps = _Counter(limits.heic_items * 16, "HEIC has more than {limit} boxes and references")
    items = _HeifItems()
    meta = next((box for box in _iso_boxes(data, 0, len(data), steps) if box[0] == b"meta"), None)
    if meta is None:
        return _Structure()
    _, start, end = meta
    properties: list[tuple[int, int] | None] = []
    associations: dict[int, list[int]] = {}
    for kind, body, box_end in _iso_boxes(data, start + 4, end, steps):  # meta is a full box: skip version/flags
        if kind == b"pitm" and body + 6 <= box_end:
            items.primary = _read_uint(data, body + 4, 2 if data[body] == 0 else 4)
        elif body + 8 > box_end:
            continue  # too short to be any of the boxes below: the decoder will say what is wrong
        elif kind == b"iinf":
            count_size = 2 if data[body] == 0 else 4
            if _read_uint(data, body + 4, count_size) > limits.heic_items:
                raise ImageRejected(f"HEIC has more than {limits.heic_items} items")
            _heif_item_types(data, body + 4 + count_size, box_end, items, steps)
        elif kind == b"iref":
            _heif_references(data, body, box_end, items, steps)
        elif kind == b"iprp":
            properties, associations = _heif_properties(data, body, box_end, steps)
    for item, indexes in associations.items():
        for index in indexes:
            if 0 < index <= len(properties) and (size := properties[index - 1]) is not None:
                items.sizes[item] = size
    decoded = _heif_decoded_pixels(items, steps)
    if decoded > limits.heic_decoded_pixels:
        raise ImageRejected(
            f"HEIC decodes too many pixels ({decoded / 1e6:.0f} megapixels in its tiles and auxiliary images, "
            f"limit {limits.heic_decoded_pixels / 1e6:.0f})"
        )
    return _Structure(decoded_pixels=decoded)


def _iso_boxes(data: bytes, start: int, end: int, steps: _Counter) -> Iterator[tuple[bytes, int, int]]:
    """(kind, body start, end) of each box directly inside data[start:end]."""
    position = start
    while position + 8 <= end:
        steps.add()
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1 and position + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            return
        yield kind, position + header, position + size
        position += size


def _read_uint(data: bytes, position: int, size: int) -> int:
    return int.from_bytes(data[position : position + size], "big")


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _heif_item_types(data: bytes, start: int, end: int, items: _HeifItems, steps: _Counter) -> None:
    for kind, entry, entry_end in _iso_boxes(data, start, end, steps):
        version = data[entry] if entry < entry_end else 0
        if kind != b"infe" or version < 2:
            continue
        id_size = 2 if version == 2 else 4
        item = _read_uint(data, entry + 4, id_size)
        items.types[item] = data[entry + 4 + id_size + 2 : entry + 4 + id_size + 6]  # after the protection index


def _heif_references(data: bytes, body: int, end: int, items: _HeifItems, steps: _Counter) -> None:
    id_size = 2 if data[body] == 0 else 4
    for kind, reference, reference_end in _iso_boxes(data, body + 4, end, steps):
        source = _read_uint(data, reference, id_size)
        first = reference + id_size + 2
        count = min(_read_uint(data, reference + id_size, 2), max(0, (reference_end - first) // id_size))
        steps.add(count)
        targets = [_read_uint(data, first + i * id_size, id_size) for i in range(count)]
        if kind == b"dimg":
            items.derived_from.setdefault(source, []).extend(targets)
        elif kind == b"auxl":
            for target in targets:
                items.auxiliary_of.setdefault(target, []).append(source)


def _heif_properties(
    data: bytes, body: int, end: int, steps: _Counter
) -> tuple[list[tuple[int, int] | None], dict[int, list[int]]]:
    """The 'ispe' sizes in the property container (by 1-based index) and each item's property indexes."""
    properties: list[tuple[int, int] | None] = []
    associations: dict[int, list[int]] = {}
    for kind, box, box_end in _iso_boxes(data, body, end, steps):
        if kind == b"ipco":
            for property_kind, prop, prop_end in _iso_boxes(data, box, box_end, steps):
                is_size = property_kind == b"ispe" and prop + 12 <= prop_end
                properties.append(struct.unpack_from(">II", data, prop + 4) if is_size else None)
        elif kind == b"ipma" and box + 8 <= box_end:
            version, flags = data[box], _read_uint(data, box + 1, 3)
            id_size, index_size = (2 if version < 1 else 4), (2 if flags & 1 else 1)
            index_mask = 0x7FFF if flags & 1 else 0x7F
            count, position = _read_uint(data, box + 4, 4), box + 8
            for _ in range(count):
                if position + id_size + 1 > box_end:
                    break
                steps.add()
                item = _read_uint(data, position, id_size)
                links = data[position + id_size]
                position += id_size + 1
                indexes = [_read_uint(data, position + i * index_size, index_size) & index_mask for i in range(links)]
                steps.add(links)
                associations.setdefault(item, []).extend(indexes)
                position += links * index_size
    return properties, associations


def _heif_decoded_pixels(items: _HeifItems, steps: _Counter) -> int:
    """The pixels of every coded item decoding the primary image touches, through derivations (a grid's tiles) and
    auxiliary images, counted once per reference: libheif decodes a tile as often as a grid names it."""
    if items.primary is None:
        return 0
    total = 0
    pending = [(items.primary, 0)]
    while pending:
        item, depth = pending.pop()
        steps.add()  # every visit counts, so neither a reference cycle nor a huge fan-out makes this walk long
        if depth > _HEIF_MAX_DERIVATION_DEPTH:
            continue
        pending.extend((auxiliary, depth + 1) for auxiliary in items.auxiliary_of.get(item, []))
        if items.types.get(item) in _HEIF_DERIVED_ITEMS:
            pending.extend((source, depth + 1) for source in items.derived_from.get(item, []))
        else:
            width, height = items.sizes.get(item, (0, 0))
            total += width * height
    return total


_STRUCTURE_WALKERS: dict[str, Callable[[bytes, DecodeLimits], _Structure]] = {
    "image/jpeg": _jpeg_structure,
    "image/png": _png_structure,
    "image/gif": _gif_structure,
    "image/webp": _webp_structure,
    "image/heic": _heic_structure,
}


# --- memory: the decode's peak, estimated from the header ----------------------------------------------------------

# Peak bytes per decoded pixel of the pipeline below (decode, flatten onto white, resample), by the mode Pillow
# decodes to: the decoded image plus the largest full-size copy made from it. Pillow keeps RGB in 4 bytes a pixel
# and LA in 4. "+alpha" is the mode carrying a transparent colour (tRNS), flattened through LA or RGBA. Each figure
# includes one byte a pixel for resampling; test_the_memory_estimate_covers_the_measured_peak holds them to
# measured peaks.
_PIPELINE_BYTES_PER_PIXEL = {
    "1": 3,
    "L": 2,
    "P": 6,
    "I;16": 5,
    "I;16B": 5,
    "I": 9,
    "LA": 7,
    "RGB": 5,
    "RGBA": 9,
    "CMYK": 5,
    "L+alpha": 7,
    "1+alpha": 7,
    "RGB+alpha": 9,
}
_UNKNOWN_MODE_BYTES_PER_PIXEL = 9
# WebP and HEIC decoders hold their own buffers while Pillow copies the decoded image out of them (4 bytes a pixel,
# RGB or RGBA): bytes a pixel on top of that copy, during the load only. libwebp's animation decoder (Pillow's only
# WebP path) keeps two RGBA canvases and hands the frame over as another copy: 12. libheif's decoded RGB(A): 4,
# counted over every tile it decodes. Measured at 100 MP: WebP 15.3 bytes a pixel in all, HEIC 6.7.
_DECODER_BYTES_PER_PIXEL = {"image/webp": 12, "image/heic": 4}
_DECODED_BYTES_PER_PIXEL = 4
# Decoder state, tables, thread stacks (libheif decodes tiles on several threads, 8 MB of stack each), Python.
_FIXED_DECODE_BYTES = 48 * 1024 * 1024


def _check_memory(image: Image.Image, content_type: str, structure: _Structure, limits: DecodeLimits) -> None:
    estimate = _estimated_peak_bytes(image, content_type, structure)
    if estimate > limits.memory_bytes:
        raise ImageRejected(_too_much_memory_reason(estimate, limits))


def _check_canvas(canvas: tuple[int, int], content_type: str, max_pixels: int, limits: DecodeLimits) -> None:
    """The pixel cap and the decoder's own share of the memory budget, for a canvas read from the bytes."""
    width, height = canvas
    if width * height > max_pixels:
        raise ImageRejected(_too_large_reason(max_pixels, canvas))
    decoder_bytes_per_pixel = _DECODED_BYTES_PER_PIXEL + _DECODER_BYTES_PER_PIXEL.get(content_type, 0)
    estimate = _FIXED_DECODE_BYTES + width * height * decoder_bytes_per_pixel
    if estimate > limits.memory_bytes:
        raise ImageRejected(_too_much_memory_reason(estimate, limits))


def _too_much_memory_reason(estimate: int, limits: DecodeLimits) -> str:
    return f"image needs too much memory to decode (about {estimate >> 20} MB, limit {limits.memory_bytes >> 20} MB)"


def _estimated_peak_bytes(image: Image.Image, content_type: str, structure: _Structure) -> int:
    """The decode's peak memory, from the size it will be decoded at (after any JPEG draft) and its mode: the
    larger of the load (the decoder's buffers beside Pillow's copy) and the pipeline after it, plus a multi-scan
    JPEG's coefficients, which libjpeg holds for the whole decode."""
    width, height = image.size
    pixels = width * height
    mode = image.mode
    if "transparency" in image.info and mode in ("1", "L", "RGB"):
        mode += "+alpha"
    pipeline = pixels * _PIPELINE_BYTES_PER_PIXEL.get(mode, _UNKNOWN_MODE_BYTES_PER_PIXEL)
    decoder_pixels = max(pixels, structure.decoded_pixels)  # a HEIC's tiles may cover far more than its canvas
    load = pixels * _DECODED_BYTES_PER_PIXEL + decoder_pixels * _DECODER_BYTES_PER_PIXEL.get(content_type, 0)
    return _FIXED_DECODE_BYTES + structure.coefficient_bytes + max(load, pipeline)


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


def _flattened(image: Image.Image) -> Image.Image:
    """The decoded image as L, RGB or CMYK with 8 bits a channel, any transparency composited onto white, ready to
    resample. Compositing before resampling gives the same result as resampling premultiplied colours (both are
    linear), without Pillow's premultiplied full-size copy. Each full-size step closes the one before it, so no
    more than two full-size images exist at once."""
    if image.mode.startswith("I"):
        # 16-bit greyscale: a plain convert("L") clips everything above 255 to white; rescale the range instead.
        scaled = _replaced(image, image.point(lambda value: value / 257))
        return _replaced(scaled, scaled.convert("L"))
    if image.mode == "P":
        return _replaced(image, _palette_on_white(image))
    if "transparency" in image.info and image.mode in ("1", "L", "RGB"):  # a transparent colour (tRNS)
        image = _replaced(image, image.convert("LA" if image.mode in ("1", "L") else "RGBA"))
    if image.mode in ("LA", "RGBA"):
        return _replaced(image, _on_white(image))
    if image.mode in ("L", "RGB", "CMYK"):
        return image
    if image.has_transparency_data:  # La, RGBa, PA and the like
        return _flattened(_replaced(image, image.convert("RGBA")))
    return _replaced(image, image.convert("L" if image.mode == "1" else "RGB"))  # 1, YCbCr…


def _replaced(old: Image.Image, new: Image.Image) -> Image.Image:
    """`new`, having released `old`'s pixels: at these sizes every full-size copy counts against the budget."""
    if new is not old:
        old.close()
    return new


def _on_white(image: Image.Image) -> Image.Image:
    """LA onto white L, RGBA onto white RGB: each pixel blended with white by its alpha."""
    white = Image.new("L" if image.mode == "LA" else "RGB", image.size, "white")
    white.paste(image, mask=image)  # an LA or RGBA mask is its alpha band
    return white


def _palette_on_white(image: Image.Image) -> Image.Image:
    """A palette image as RGB, its transparent entries blended with white in the palette itself: the same result
    as compositing every pixel, for the price of 256 colours rather than a full-size RGBA copy."""
    if not image.has_transparency_data:
        return image.convert("RGB")
    rgb = image.getpalette("RGB") or []
    if not rgb:  # no palette to blend: Pillow reads the indexes as grey
        image.info.pop("transparency", None)
        return image.convert("RGB")
    entries = len(rgb) // 3
    palette = image.palette
    alphas = (image.getpalette("RGBA") or [])[3::4] if palette and palette.mode == "RGBA" else [255] * entries
    # The alphas Pillow's convert("RGBA") would apply: a transparent index (GIF, PNG) or tRNS's list (PNG).
    transparency = image.info.pop("transparency", None)
    if isinstance(transparency, int) and 0 <= transparency < entries:
        alphas[transparency] = 0
    elif isinstance(transparency, bytes):
        alphas[: len(transparency)] = transparency[:entries]
    flattened = [
        (channel * alpha + 255 * (255 - alpha) + 127) // 255
        for index, alpha in enumerate(alphas)
        for channel in rgb[3 * index : 3 * index + 3]
    ]
    image.putpalette(flattened, "RGB")
    return image.convert("RGB")


def _resized(image: Image.Image, edge: int) -> Image.Image:
    size = _fit_within(image.size, edge)
    if size == image.size:
        return image
    # reducing_gap lets Pillow box-reduce by an integer factor before Lanczos: much faster on big PNGs and WebPs,
    # indistinguishable at preview sizes.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _upright_rgb(image: Image.Image, orientation: int) -> Image.Image:
    if image.mode != "RGB":
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


def _jpeg_preview(image: Image.Image, icc_profile: bytes | None, *, progressive: bool = False) -> Preview:
    # Pillow's JPEG writer falls back to image.info for some metadata (the comment), and info travels through
    # resize and convert: start from nothing so no EXIF, GPS, XMP or comment of the original can leak.
    image.info = {}
    buffer = io.BytesIO()
    image.save(
        buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True, progressive=progressive, icc_profile=icc_profile
    )
    return Preview(data=buffer.getvalue(), width=image.width, height=image.height)


def _webp_preview(image: Image.Image, icc_profile: bytes | None, *, quality: int) -> Preview:
    # Pillow's WebP writer takes EXIF and XMP only when asked (never from image.info), but start from nothing as the
    # JPEG path does, so no later Pillow that falls back to info can leak the original's. Lossy, 4:2:0: an RGB image
    # has no alpha to keep (transparency was flattened onto white). The ICC profile travels in an ICCP chunk.
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality, method=WEBP_METHOD, icc_profile=icc_profile)
    return Preview(data=buffer.getvalue(), width=image.width, height=image.height)
