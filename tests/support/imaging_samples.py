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


# --- structures that cost far more to decode than their size suggests (issue 11) ---------------------------------
# Each is a well-formed file, or one decoders accept with at most a warning, and is written byte by byte: an encoder
# would take minutes to write a million frames, or refuses the structure outright.


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


class _BitWriter:
    """Entropy-coded JPEG data: bits packed most significant first, a 0x00 stuffed after every 0xFF byte."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._bits = 0
        self._count = 0

    def put(self, value: int, count: int) -> None:
        self._bits = (self._bits << count) | value
        self._count += count
        while self._count >= 8:
            self._count -= 8
            byte = (self._bits >> self._count) & 0xFF
            self._out += b"\xff\x00" if byte == 0xFF else bytes((byte,))
        self._bits &= (1 << self._count) - 1

    def getvalue(self) -> bytes:
        if self._count:
            self.put((1 << (8 - self._count)) - 1, 8 - self._count)  # padded with ones, as the standard says
        return bytes(self._out)


def _one_code_huffman_table(table_class: int, symbol: int) -> bytes:
    """A DHT table with one symbol, coded as the single bit 0."""
    return bytes((table_class << 4,)) + b"\x01" + bytes(15) + bytes((symbol,))


def jpeg_scan_bomb(width: int, height: int, scans: int) -> bytes:
    """A progressive greyscale JPEG of mid grey whose AC refinement scan is repeated `scans` times (LJT-01-003).

    Each repeat is a few dozen bytes, since one end-of-band run codes 32,767 blocks in 15 bits, yet libjpeg visits
    every coefficient of every block for it: ~44 ns per 8×8 block and scan, so thousands of scans over a few
    megapixels cost minutes of CPU. Repeating a refinement breaks the successive-approximation order, which libjpeg
    reports as a warning (JWRN_BOGUS_PROGRESSION) and decodes anyway; Pillow ignores libjpeg's warnings.
    """
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    quantisation = jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
    frame = jpeg_segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")  # SOF2: progressive
    # DC: only the difference category 0 (stays grey). AC: only symbol 0xE0, an end-of-band run of 2^14 + 14 bits.
    tables = jpeg_segment(0xC4, _one_code_huffman_table(0, 0x00) + _one_code_huffman_table(1, 0xE0))
    dc = _BitWriter()
    for _ in range(blocks):
        dc.put(0, 1)
    dc_scan = jpeg_segment(0xDA, bytes((1, 1, 0x00, 0, 0, 0x00))) + dc.getvalue()  # Ss=Se=0, Ah=Al=0
    runs = _BitWriter()
    for _ in range(-(-blocks // 32_767)):
        runs.put(0, 1)  # the code of 0xE0
        runs.put((1 << 14) - 1, 14)  # EOBRUN = 2^14 + (2^14 - 1) = 32,767 blocks
    refinement = jpeg_segment(0xDA, bytes((1, 1, 0x00, 1, 63, 0x10))) + runs.getvalue()  # Ss=1, Se=63, Ah=1, Al=0
    return b"\xff\xd8" + quantisation + frame + tables + dc_scan + refinement * scans + b"\xff\xd9"


def jpeg_with_segments(count: int) -> bytes:
    """A small real JPEG with `count` empty comment segments before its frame header (4 bytes each)."""
    data = encode(Image.new("RGB", (8, 8), GREY), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def jpeg_with_fill_bytes(count: int) -> bytes:
    """A small real JPEG with `count` extra 0xFF fill bytes before one of its markers (the standard allows any)."""
    data = encode(Image.new("RGB", (8, 8), GREY), "JPEG")
    marker = data.index(b"\xff\xdb")  # the quantisation tables
    return data[:marker] + b"\xff" * count + data[marker:]


def png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    row: bytes | None = None,
    before_image: bytes = b"",
    idat_bytes: int | None = None,
    stored: bool = False,
) -> bytes:
    """A PNG written chunk by chunk: every row the same (so even a huge image compresses to almost nothing, unless
    `stored` leaves it uncompressed), optional chunks before the image data, and the image data split into IDAT
    chunks of `idat_bytes`."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row_bytes = (width * channels * bit_depth + 7) // 8
    pixels = row if row is not None else bytes(row_bytes)
    filtered = b"\x00" + pixels[:row_bytes].ljust(row_bytes, b"\x00")
    compressor = zlib.compressobj(0 if stored else 9)
    rows_per_block = max(1, 8_000_000 // len(filtered))
    stream = b"".join(
        compressor.compress(filtered * min(rows_per_block, height - start))
        for start in range(0, height, rows_per_block)
    )
    stream += compressor.flush()
    step = idat_bytes or len(stream)
    image_data = b"".join(png_chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + before_image + image_data + png_chunk(b"IEND", b"")


def png_with_chunks(count: int) -> bytes:
    """A 1×1 PNG carrying `count` empty private chunks before its image data: 12 bytes each."""
    return png(1, 1, before_image=png_chunk(b"prIv", b"") * count)


def png_with_frame_controls(frames: int, *, frame: tuple[int, int] = (1, 1)) -> bytes:
    """An animated PNG (APNG) of a 1×1 default image and `frames` frame-control chunks, each frame `frame` big."""
    control = b"".join(
        png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", number, *frame, 0, 0, 1, 10, 0, 0)) for number in range(frames)
    )
    return png(1, 1, before_image=png_chunk(b"acTL", struct.pack(">II", frames, 0)) + control)


@functools.cache
def _gif_pixels(width: int, height: int) -> bytes:
    """LZW code size and data sub-blocks of a width×height frame of palette index 0, as Pillow encodes it."""
    data = encode(Image.new("P", (width, height), 0), "GIF")
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[position] == 0x21:  # extensions before the frame: skip their sub-blocks
        position += 2
        while data[position]:
            position += 1 + data[position]
        position += 1
    frame_flags = data[position + 9]
    position += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
    return data[position:-1]  # up to the trailer


def _gif_frame(width: int, height: int) -> bytes:
    control = b"!\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
    pixels = _GIF_PIXELS if (width, height) == (1, 1) else _gif_pixels(width, height)
    return control + _gif_frame_descriptor(width, height) + pixels


def gif_with_frames(count: int, *, screen: tuple[int, int] = (1, 1), frame: tuple[int, int] = (1, 1)) -> bytes:
    """An animated GIF of `count` frames (23 bytes each when 1×1), looping forever."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return head + loop + _gif_frame(*frame) * count + b";"


def gif_with_stray_bytes(count: int) -> bytes:
    """A 1×1 GIF with `count` zero bytes between its screen and its frame: no block starts with one, so readers
    step over them looking for the next block."""
    return _GIF_SCREEN + bytes(count) + _gif_frame_descriptor(1, 1) + _GIF_PIXELS + b";"


def gif_with_comment_blocks(count: int) -> bytes:
    """A 1×1 GIF whose comment extension comes in `count` sub-blocks of one byte each (2 bytes per block)."""
    comment = b"!\xfe" + b"\x01x" * count + b"\x00"
    return _GIF_SCREEN + comment + _gif_frame_descriptor(1, 1) + _GIF_PIXELS + b";"


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)


def _int24(value: int) -> bytes:
    return value.to_bytes(3, "little")


@functools.cache
def _webp_one_pixel_bitstream() -> bytes:
    """The VP8L chunk (header included) of a lossless 1×1 WebP, as libwebp writes it."""
    data = encode(Image.new("RGB", (1, 1), GREY), "WEBP", lossless=True)
    return data[12:]


def animated_webp(frames: int, *, canvas: tuple[int, int] = (1, 1), extra_chunks: int = 0) -> bytes:
    """An animated WebP of `frames` 1×1 frames on a canvas of any size (a frame need not cover its canvas), after
    `extra_chunks` unknown empty chunks."""
    width, height = canvas
    header = _riff_chunk(b"VP8X", bytes((0x02, 0, 0, 0)) + _int24(width - 1) + _int24(height - 1))  # animated
    animation = _riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))  # white background, loop forever
    # At (0, 0), 1×1 (stored minus one), 100 ms, no blending flags.
    placement = _int24(0) + _int24(0) + _int24(0) + _int24(0) + _int24(100) + b"\x00"
    one_frame = _riff_chunk(b"ANMF", placement + _webp_one_pixel_bitstream())
    body = b"WEBP" + header + animation + _riff_chunk(b"XTRA", b"") * extra_chunks + one_frame * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, bytes((version,)) + flags.to_bytes(3, "big") + payload)


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """The boxes directly inside data[start:end]: kind -> (payload start, payload end); the last one of a kind wins."""
    found: dict[bytes, tuple[int, int]] = {}
    position, end = start, len(data) if end is None else end
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        found[kind] = (position + 8, position + size)
        position += size
    return found


@functools.cache
def _heic_tile(size: tuple[int, int]) -> tuple[bytes, bytes]:
    """The hvcC property box and the HEVC bitstream of a plain HEIC tile, as libheif's encoder writes them."""
    data = heic(Image.new("RGB", size, (90, 120, 200)))
    meta_start, meta_end = _boxes(data)[b"meta"]
    inside_meta = _boxes(data, meta_start + 4, meta_end)
    ipco_start, ipco_end = _boxes(data, *inside_meta[b"iprp"])[b"ipco"]
    hvcc_start, hvcc_end = _boxes(data, ipco_start, ipco_end)[b"hvcC"]
    mdat_start, mdat_end = _boxes(data)[b"mdat"]  # libheif writes one item: the whole mdat is its bitstream
    return data[hvcc_start - 8 : hvcc_end], data[mdat_start:mdat_end]


def heic_grid(
    canvas: tuple[int, int], grid: tuple[int, int], *, tile: tuple[int, int] = (512, 512), one_tile_item: bool = False
) -> bytes:
    """A HEIC whose primary image is a grid of rows×columns tiles, every tile pointing at the same few hundred
    bytes of HEVC: a canvas of any size (and any amount of decoding) for the price of ~40 bytes of metadata a tile.
    The tiles may cover far more than the canvas; decoders decode whole tiles and crop. With `one_tile_item` the
    grid names a single tile item rows×columns times instead (2 bytes a tile)."""
    rows, columns = grid
    hvcc, bitstream = _heic_tile(tile)
    grid_id, first_tile = 1, 2
    tile_ids = range(first_tile, first_tile + (1 if one_tile_item else rows * columns))
    grid_references = [first_tile] * (rows * columns) if one_tile_item else list(tile_ids)
    tiles = len(tile_ids)
    descriptor = struct.pack(">BBBBII", 0, 1, rows - 1, columns - 1, *canvas)  # flags 1: 32-bit output size
    handler = _full_box(b"hdlr", 0, 0, bytes(4) + b"pict" + bytes(12) + b"\x00")
    primary = _full_box(b"pitm", 0, 0, struct.pack(">H", grid_id))
    entries = [_full_box(b"infe", 2, 0, struct.pack(">HH", grid_id, 0) + b"grid\x00")]
    entries += [_full_box(b"infe", 2, 1, struct.pack(">HH", item, 0) + b"hvc1\x00") for item in tile_ids]  # hidden
    item_info = _full_box(b"iinf", 0, 0, struct.pack(">H", 1 + tiles) + b"".join(entries))
    references = _full_box(
        b"iref",
        0,
        0,
        _box(
            b"dimg",
            struct.pack(">HH", grid_id, len(grid_references)) + b"".join(struct.pack(">H", i) for i in grid_references),
        ),
    )
    properties = _box(
        b"ipco",
        hvcc
        + _full_box(b"ispe", 0, 0, struct.pack(">II", *tile))
        + _full_box(b"ispe", 0, 0, struct.pack(">II", *canvas)),
    )
    associations = struct.pack(">IHBB", 1 + tiles, grid_id, 1, 3) + b"".join(
        struct.pack(">HBBB", item, 2, 0x81, 2)
        for item in tile_ids  # hvcC (essential), then the tile's ispe
    )
    item_properties = _box(b"iprp", properties + _full_box(b"ipma", 0, 0, associations))
    item_data = _box(b"idat", descriptor)

    def locations(tile_offset: int) -> bytes:
        # Version 1 (construction methods), 4-byte offsets and lengths, no base offset: the grid's descriptor in
        # idat (method 1), every tile at the one bitstream in mdat (method 0).
        items = struct.pack(">HHHHII", grid_id, 1, 0, 1, 0, len(descriptor))
        items += b"".join(struct.pack(">HHHHII", item, 0, 0, 1, tile_offset, len(bitstream)) for item in tile_ids)
        return _full_box(b"iloc", 1, 0, b"\x44\x00" + struct.pack(">H", len(tile_ids) + 1) + items)

    file_type = _box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")

    def meta(tile_offset: int) -> bytes:
        children = handler + primary + locations(tile_offset) + item_info + references + item_properties + item_data
        return _full_box(b"meta", 0, 0, children)

    tile_offset = len(file_type) + len(meta(0)) + 8  # the bitstream starts right after the mdat box's header
    return file_type + meta(tile_offset) + _box(b"mdat", bitstream)
