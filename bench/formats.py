"""Section 10: preview formats and sizes (the issue "where it pays, with numbers": WebP or AVIF previews at equal
quality, responsive previews with a 2048 px one for dense screens).

`python -m bench --only formats` measures it and writes this section of docs/PERFORMANCE.md in place.

The corpus: photo-like scenes drawn here at a phone camera's 4032×3024 and saved as a camera would (JPEG q92),
cached under build/bench-formats, plus any real photo found on this machine (REAL_PHOTOS). Each is made into
previews as the worker makes them (JPEG draft decode, Lanczos to fit 1024, the 256 from that), and each preview is
encoded as today (JPEG q82, optimised Huffman tables, 4:2:0), as the same JPEG progressive (identical pixels), and as
WebP and AVIF at the lowest quality whose SSIM reaches today's JPEG's. The metric is SSIM on luma (Rec. 601 Y, in
floating point; Gaussian window σ 1.5, 11 taps; K1 0.01, K2 0.03; the 5-pixel border left out), what
scikit-image's `structural_similarity(gaussian_weights=True, use_sample_covariance=False, data_range=255)` computes,
written here with Pillow alone (`ssim`) so the bench needs nothing more. Chroma SSIM (Cb, Cr) at the chosen
quality is reported beside it, to show that matching luma did not buy bytes from colour.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import common, cost
from bench.common import fmt_num, table

SECTION_HEADING = "## 10. Preview formats and sizes: WebP and AVIF at equal quality, a 2048 px preview"
ANALYSIS_HEADING = "## Analysis"

SAMPLES_VERSION = "1"
CACHE_DIR = common.PROJECT_DIR / "build" / "bench-formats"
CAMERA_SIZE = (4032, 3024)  # a 12 MP phone camera, 4:3
CAMERA_QUALITY = 92
# Real photos, used when present (the repository has none, and nothing is downloaded): the first match of each
# pattern, copies (same bytes) once. A diagram or a logo is not a photo and is not listed here.
REAL_PHOTOS: tuple[tuple[str, str], ...] = (
    ("/usr/share/backgrounds/**/*.jpg", "desktop background"),
    ("/usr/share/wallpapers/**/*.jpg", "desktop wallpaper"),
    ("~/.rustup/toolchains/*/share/doc/rust/html/embedded-book/assets/f3.jpg", "circuit board photo (Rust docs)"),
)

MEDIUM_EDGE = 512  # not made today: what a dense gallery would ask a srcset for
XLARGE_EDGE = 2048
TIMING_REPETITIONS = 2  # encodes timed per preview and encoder, the search's own included (the median is reported)
PIPELINE_REPETITIONS = 1  # worker pipelines timed per photo and variant (the median over photos is reported)

# Data transfer out to the internet, per GB: CloudFront's (which serves the previews since issue 14) in the US and
# Europe, first 10 TB a month; S3's own is $0.09. Not in bench/cost.py's PRICES, which has no transfer: an input here,
# edit before relying on it.
EGRESS_USD_PER_GB = 0.085

# The web client's layout (web/styles.css), to know how many device pixels each view needs.
MAIN_MAX_WIDTH = 1200  # main { max-width: 1200px; padding: 1.5rem } (1rem at 720 px and below)
DESKTOP_PADDING, PHONE_PADDING = 24, 16
PHONE_VIEWPORT = 390  # CSS px: iPhone 12-16, most Android phones 360-412
PHOTO_VIEW_GAP = 24  # .photo-view: 2fr / minmax(16rem, 1fr), gap 1.5rem; one column at 720 px and below
TILE_MIN, TILE_GAP = 170, 16  # .grid: repeat(auto-fill, minmax(170px, 1fr)), gap 1rem; tiles square, object-fit: cover
GALLERY_PAGE = 24  # web/views/gallery.js PAGE_SIZE
LANDSCAPE = 4 / 3  # the corpus' aspect: a tile (square, cover) shows a 4:3 preview this much wider than the tile

# What browsers decode (caniuse.com and the vendors' release notes, as of 2025): not measured here.
DECODE_SUPPORT = (
    ("JPEG (baseline or progressive)", "every browser", "none"),
    (
        "WebP",
        "Chrome 32+, Edge 18+, Firefox 65+, Safari 14+ (macOS 11+; 16+ on every macOS), iOS 14+, Samsung Internet 4+",
        "none among current browsers; Safari on macOS 10.15 and older, iOS 13 and older",
    ),
    (
        "AVIF",
        "Chrome 85+, Firefox 93+, Safari 16.4+ on macOS 13+ and iOS 16+ (Safari takes AVIF from the OS), "
        "Edge 121+ (January 2024), Samsung Internet 14+",
        "Safari on macOS 12 and older (any Safari version), iOS/iPadOS 15 and older, Edge before 121, "
        "Android WebViews before Chrome 85: a JPEG or WebP fallback (`<picture>`) is needed",
    ),
)


# --- SSIM on Pillow images (no numpy) -------------------------------------------------------------------------------

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 taps: scikit-image's truncate=3.5 at σ 1.5
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2


def gaussian_taps(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> list[float]:
    """A normalised 1-D Gaussian kernel of 2·radius + 1 taps."""
    weights = [math.exp(-(offset * offset) / (2 * sigma * sigma)) for offset in range(-radius, radius + 1)]
    total = sum(weights)
    return [weight / total for weight in weights]


def luma(image: Any) -> Any:
    """Rec. 601 luma of an RGB image as a float ("F") image, unrounded."""
    return image.convert("RGB").convert("F")


def chroma(image: Any) -> tuple[Any, Any]:
    """The Cb and Cr planes (JPEG's YCbCr) as float images at half resolution (box-averaged), as 4:2:0 stores them
    in all three formats, and a quarter of the SSIM's cost."""
    _y, cb, cr = image.convert("RGB").convert("YCbCr").split()
    return cb.convert("F").reduce(2), cr.convert("F").reduce(2)


def _blurred(plane: Any, taps: Sequence[float]) -> Any:
    """`plane` convolved with taps⊗taps, separably. Pillow's blurs refuse float images, so this sums shifted copies.
    ImageChops.offset wraps around the edges: only the outer `radius` pixels are wrong, and SSIM leaves them out."""
    from PIL import ImageChops, ImageMath

    radius = len(taps) // 2
    for horizontal in (True, False):

        def shifted(by: int, source: Any = plane, horizontal: bool = horizontal) -> Any:
            return ImageChops.offset(source, by, 0) if horizontal else ImageChops.offset(source, 0, by)

        total = plane.point(lambda v, w=taps[radius]: v * w)  # point() scales a float image in C; ImageMath
        for distance in range(1, radius + 1):  # makes a whole constant image for every scalar
            pair = ImageMath.lambda_eval(lambda a: a["l"] + a["r"], l=shifted(distance), r=shifted(-distance))
            weighted = pair.point(lambda v, w=taps[radius + distance]: v * w)
            total = ImageMath.lambda_eval(lambda a: a["t"] + a["p"], t=total, p=weighted)
        plane = total
    return plane


def _mean(plane: Any) -> float:
    from PIL import Image

    return float(plane.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0)))  # a box over everything: the mean


class SsimReference:
    """One reference plane with its local statistics computed once: every candidate compared with it (a quality
    search makes several) costs three blurs instead of five.

    Both planes are centred on the reference's mean before the second moments are taken: variance is a small
    difference of large float32 sums (E[x²] − E[x]²), and centring makes the sums, so their rounding, several
    times smaller."""

    def __init__(self, plane: Any, taps: Sequence[float] | None = None) -> None:
        self.taps = list(taps) if taps is not None else gaussian_taps()
        self.size = plane.size
        self.centre = _mean(plane)
        self.plane = plane.point(lambda v: v - self.centre)
        self.mean = _blurred(self.plane, self.taps)  # centred: the local mean minus the centre
        self.square = _blurred(_product(self.plane, self.plane), self.taps)

    def ssim(self, candidate: Any) -> float:
        """Mean SSIM of `candidate` (a float plane of the same size) against the reference, border left out."""
        from PIL import ImageMath

        if candidate.size != self.size:
            raise ValueError(f"sizes differ: {candidate.size} vs {self.size}")
        radius = len(self.taps) // 2
        width, height = self.size
        if width <= 2 * radius or height <= 2 * radius:
            raise ValueError(f"{width}×{height} is too small for an {2 * radius + 1}-tap window")
        centred = candidate.point(lambda v: v - self.centre)
        mx, my = self.mean, _blurred(centred, self.taps)
        square_y = _blurred(_product(centred, centred), self.taps)
        cross = _blurred(_product(self.plane, centred), self.taps)
        mxy, mxx, myy = _product(mx, my), _product(mx, mx), _product(my, my)
        # The luminance term takes the means themselves: (2·μx·μy + C1) / (μx² + μy² + C1).
        ux, uy = mx.point(lambda v: v + self.centre), my.point(lambda v: v + self.centre)
        luminance_top = _product(ux, uy).point(lambda v: 2 * v + SSIM_C1)
        luminance_bottom = ImageMath.lambda_eval(lambda a: a["x"] * a["x"] + a["y"] * a["y"], x=ux, y=uy).point(
            lambda v: v + SSIM_C1
        )
        # The contrast-structure term: (2·σxy + C2) / (σx² + σy² + C2), moments of the centred planes.
        structure_top = ImageMath.lambda_eval(lambda a: a["c"] - a["m"], c=cross, m=mxy).point(
            lambda v: 2 * v + SSIM_C2
        )
        variances = ImageMath.lambda_eval(
            lambda a: a["sx"] - a["mxx"] + a["sy"] - a["myy"], sx=self.square, mxx=mxx, sy=square_y, myy=myy
        ).point(lambda v: v + SSIM_C2)
        index = ImageMath.lambda_eval(
            lambda a: (a["lt"] * a["st"]) / (a["lb"] * a["v"]),
            lt=luminance_top,
            st=structure_top,
            lb=luminance_bottom,
            v=variances,
        )
        return _mean(index.crop((radius, radius, width - radius, height - radius)))


def _product(x: Any, y: Any) -> Any:
    from PIL import ImageMath

    return ImageMath.lambda_eval(lambda a: a["x"] * a["y"], x=x, y=y)


def ssim(reference: Any, candidate: Any) -> float:
    """Mean SSIM of two float planes (see SsimReference)."""
    return SsimReference(reference).ssim(candidate)


# --- the quality search and the srcset pick (pure) ----------------------------------------------------------------


FIRST_STEP = 4


def lowest_quality_reaching(
    target: float,
    score: Callable[[int], float],
    *,
    low: int = 1,
    high: int = 100,
    hint: int | None = None,
) -> int | None:
    """The lowest quality in low..high whose score reaches `target`, or None when even `high` falls short.

    The score is taken as non-decreasing in quality (SSIM against an encoder's quality is, up to noise far below
    what a quality step changes). Each score costs an encode and an SSIM, so the search is frugal: it starts at the
    hint (the answer for the image before), steps once, then aims by the secant through its scores (SSIM is smooth
    in quality) and checks the aimed-at quality's neighbour, which usually settles it: three or four scores where a
    bisection of 1..100 takes eight. A guess that fails to halve the bracket makes the next one a bisection."""
    if not low <= high:
        raise ValueError("low must not exceed high")
    scores: dict[int, float] = {}
    below, above = low - 1, high + 1  # `below` falls short, `above` reaches; outside low..high they are unknown
    tried: list[int] = []
    widths = [above - below]
    quality = hint if hint is not None and low <= hint <= high else (low + high + 1) // 2
    aimed = False
    while True:
        scores[quality] = score(quality)
        tried.append(quality)
        if scores[quality] >= target:
            above = quality
        else:
            below = quality
        widths.append(above - below)
        if above - below <= 1:
            return above if above <= high else None
        if below < low or above > high:
            quality = _gallop(tried, scores, target, down=above <= high, low=low, high=high)
        elif aimed:  # the neighbour of an aimed-at guess, on the side still open, usually settles it
            quality, aimed = (quality - 1 if quality == above else quality + 1), False
        elif len(tried) >= 6 or widths[-1] > widths[-3] // 2 or scores[above] <= scores[below]:
            quality = (below + above) // 2  # slow progress, or no slope to aim by
        else:
            fraction = (target - scores[below]) / (scores[above] - scores[below])
            quality = min(above - 1, max(below + 1, below + math.ceil(fraction * (above - below))))
            aimed = True


def _gallop(tried: Sequence[int], scores: dict[int, float], target: float, *, down: bool, low: int, high: int) -> int:
    """The next quality while the answer is not yet bracketed: aimed by the secant through the last two scores,
    but moving at least FIRST_STEP·2^k and at most 16·2^k after k such moves, so a flat stretch cannot stall it."""
    last, moves = int(tried[-1]), len(tried) - 1
    shortest, longest = FIRST_STEP << moves, 16 << moves
    distance = shortest
    if len(tried) > 1 and tried[-2] != last:
        slope = (scores[last] - scores[tried[-2]]) / (last - tried[-2])
        if slope > 0:
            distance = min(longest, max(shortest, math.ceil(abs(target - scores[last]) / slope)))
    return max(low, last - distance) if down else min(high, last + distance)


def srcset_pick(widths: Iterable[int], slot_css: float, ratio: float, *, engine: str = "gecko") -> int:
    """The candidate a browser takes from a `w`-descriptor srcset for a slot `slot_css` CSS px wide (what `sizes`
    says) on a screen of device pixel ratio `ratio`. Each candidate's density is its width over the slot.

    gecko, webkit (Firefox, Safari): the least dense candidate at least as dense as the screen, else the densest.
    blink (Chrome, Edge; HTMLSrcsetParser.cpp's SelectionLogic): of the two candidates around the screen's ratio,
    the denser only if the ratio reaches their densities' geometric mean (or the lower one is under 1× on a 1×
    screen), so it accepts some upscaling. Blink also keeps a denser candidate it already has cached; not modelled.
    """
    ordered = sorted(widths)
    densities = [width / slot_css for width in ordered]
    if engine in ("gecko", "webkit"):
        return next((w for w, d in zip(ordered, densities, strict=True) if d >= ratio), ordered[-1])
    if engine != "blink":
        raise ValueError(f"unknown engine {engine}")
    for index in range(len(ordered) - 1):
        lower, higher = densities[index], densities[index + 1]
        if higher < ratio:
            continue
        if (ratio <= 1.0 and ratio > lower) or ratio >= math.sqrt(lower * higher):
            return ordered[index + 1]
        return ordered[index]
    return ordered[-1]


def with_section(previous: str, fresh: str) -> str | None:
    """`previous` with this section replaced by `fresh` (or, new, put before the Analysis heading); None if it has
    neither. The same rule as bench/report.py's `with_sections` for sections 7 and 8."""
    fresh = fresh.rstrip("\n")
    start = previous.find("\n" + SECTION_HEADING + "\n")
    if start >= 0:
        start += 1
        end = previous.find("\n## ", start)
        end = len(previous) if end < 0 else end
        return previous[:start] + fresh + "\n" + previous[end:]
    anchor = previous.find("\n\n" + ANALYSIS_HEADING)
    if anchor < 0:
        return None
    return previous[:anchor] + "\n\n" + fresh + previous[anchor:]


# --- the corpus -------------------------------------------------------------------------------------------------


def _noise(rng: random.Random, size: tuple[int, int], cell: int) -> Any:
    """Smooth random noise whose features are about `cell` pixels across (uniform noise, upsampled bicubically)."""
    from PIL import Image

    width, height = size
    grid = (max(2, width // cell + 2), max(2, height // cell + 2))
    return Image.frombytes("L", grid, rng.randbytes(grid[0] * grid[1])).resize(size, Image.Resampling.BICUBIC)


def _fractal(rng: random.Random, size: tuple[int, int], cells: Sequence[int], persistence: float = 0.55) -> Any:
    """Octaves of `_noise`, each finer one weaker by `persistence`: the 1/f-like spectrum of natural texture."""
    from PIL import Image, ImageOps

    total = _noise(rng, size, cells[0])
    weight, weights = 1.0, 1.0
    for cell in cells[1:]:
        weight *= persistence
        weights += weight
        total = Image.blend(total, _noise(rng, size, cell), weight / weights)
    return ImageOps.autocontrast(total, cutoff=0.5)


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Any:
    from PIL import Image, ImageOps

    return ImageOps.colorize(Image.linear_gradient("L").resize(size), top, bottom)


def _grain(image: Any, rng: random.Random, luma_amount: int, chroma_amount: int = 0) -> Any:
    """Sensor noise: uniform, ±amount/2 levels, shared by the channels (luma) or per channel (chroma)."""
    from PIL import Image, ImageChops

    size = image.size

    def plane(amount: int) -> Any:
        raw = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
        return raw.point(lambda v: v * amount // 255)

    shared = plane(luma_amount)
    noise = Image.merge("RGB", [shared] * 3)
    image = ImageChops.add(image, noise, offset=-(luma_amount // 2))
    if chroma_amount:
        colour = Image.merge("RGB", [plane(chroma_amount) for _ in range(3)])
        image = ImageChops.add(image, colour, offset=-(chroma_amount // 2))
    return image


def _as_camera(image: Any, rng: random.Random, luma_amount: int = 8, chroma_amount: int = 0) -> Any:
    """What a phone's pipeline leaves: slightly soft (demosaicing, the lens), then sensor grain."""
    from PIL import ImageFilter

    return _grain(image.filter(ImageFilter.GaussianBlur(0.7)), rng, luma_amount, chroma_amount)


def _ridge(rng: random.Random, width: int, base: float, roughness: float, depth: int = 9) -> list[float]:
    """A mountain ridge's heights, by midpoint displacement: 2^depth + 1 points across the width."""
    heights = [base + rng.uniform(-roughness, roughness), base + rng.uniform(-roughness, roughness)]
    spread = roughness
    for _ in range(depth):
        finer = []
        for left, right in itertools.pairwise(heights):
            finer += [left, (left + right) / 2 + rng.uniform(-spread, spread)]
        heights = [*finer, heights[-1]]
        spread *= 0.55
    return heights


def _ridge_mask(size: tuple[int, int], heights: Sequence[float]) -> Any:
    from PIL import Image, ImageDraw

    width, height = size
    step = width / (len(heights) - 1)
    mask = Image.new("L", size, 0)
    points = [(i * step, y) for i, y in enumerate(heights)] + [(width, height), (0, height)]
    ImageDraw.Draw(mask).polygon(points, fill=255)
    return mask


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def landscape(size: tuple[int, int], rng: random.Random) -> Any:
    """Sky with clouds, two mountain ridges of rock, a meadow."""
    from PIL import Image, ImageOps

    width, height = size
    image = _gradient(size, (38, 88, 168), (196, 216, 232))
    clouds = _fractal(rng, size, (900, 420, 200, 90, 40)).point(lambda v: max(0, min(255, (v - 135) * 4)))
    image = Image.composite(Image.new("RGB", size, (244, 244, 248)), image, clouds)
    far = _ridge_mask(size, _ridge(rng, width, height * 0.45, height * 0.12))
    rock = ImageOps.colorize(_fractal(rng, size, (300, 120, 40, 12, 4)), (70, 78, 96), (168, 166, 176))
    image = Image.composite(rock, image, far)
    near = _ridge_mask(size, _ridge(rng, width, height * 0.62, height * 0.08))
    hill = ImageOps.colorize(_fractal(rng, size, (200, 60, 16, 5)), (34, 62, 30), (112, 140, 70))
    image = Image.composite(hill, image, near)
    meadow = _ridge_mask(size, _ridge(rng, width, height * 0.8, height * 0.03))
    grass = ImageOps.colorize(_fractal(rng, size, (120, 30, 8, 3), persistence=0.8), (46, 84, 22), (170, 184, 70))
    image = Image.composite(grass, image, meadow)
    return _as_camera(image, rng)


def city(size: tuple[int, int], rng: random.Random) -> Any:
    """Buildings with window grids (hard edges, fine repetition), a street, shop signs with text."""
    from PIL import ImageDraw, ImageOps

    width, height = size
    image = _gradient(size, (120, 160, 210), (215, 225, 235))
    draw = ImageDraw.Draw(image)
    street = int(height * 0.8)
    x = -rng.randrange(200)
    while x < width:
        building = rng.randrange(320, 760)
        top = rng.randrange(int(height * 0.05), int(height * 0.5))
        facade = tuple(rng.randrange(90, 220) for _ in range(3))
        draw.rectangle((x, top, x + building, street), fill=facade, outline=(40, 40, 40), width=4)
        window_w, window_h = rng.choice(((34, 50), (46, 64), (60, 80)))
        for wy in range(top + 40, street - 120, window_h + 36):
            for wx in range(x + 30, x + building - window_w - 20, window_w + 28):
                lit = rng.random() < 0.2
                glass = (236, 214, 140) if lit else tuple(max(0, c - rng.randrange(60, 110)) for c in facade)
                draw.rectangle((wx, wy, wx + window_w, wy + window_h), fill=glass, outline=(30, 30, 30), width=2)
        x += building + rng.randrange(0, 40)
    asphalt = ImageOps.colorize(_fractal(rng, (width, height - street), (200, 40, 6, 2)), (60, 60, 64), (120, 118, 118))
    image.paste(asphalt, (0, street))
    for dash in range(0, width, 420):
        draw.polygon(
            [(dash, height - 200), (dash + 240, height - 200), (dash + 260, height - 160), (dash + 20, height - 160)],
            fill=(230, 230, 220),
        )
    for text, at, size_px in (("CAFE - BAR", (260, street - 420), 120), ("Pharmacy 24h", (1700, street - 330), 96)):
        box = draw.textbbox(at, text, font=_font(size_px))
        draw.rectangle((box[0] - 30, box[1] - 24, box[2] + 30, box[3] + 24), fill=(24, 52, 96))
        draw.text(at, text, font=_font(size_px), fill=(250, 250, 250))
    draw.text((2900, street + 60), "Bus 42 to Central Station", font=_font(64), fill=(250, 220, 40))
    return _as_camera(image, rng)


def foliage(size: tuple[int, int], rng: random.Random) -> Any:
    """Dense leaves: fine detail everywhere, the hardest content to compress."""
    from PIL import ImageDraw, ImageOps

    width, height = size
    image = ImageOps.colorize(_fractal(rng, size, (400, 100, 25)), (14, 34, 12), (70, 110, 40))
    draw = ImageDraw.Draw(image)
    light = _fractal(rng, size, (700, 300))
    for _ in range(22_000):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        length, breadth, angle = rng.uniform(30, 110), rng.uniform(10, 34), rng.uniform(0, math.pi)
        brightness = light.getpixel((int(cx) % width, int(cy) % height)) / 255
        shade = rng.uniform(0.5, 1.1) * (0.45 + 0.9 * brightness)
        colour = tuple(
            min(255, int(c * shade)) for c in rng.choice(((60, 120, 40), (90, 150, 50), (120, 160, 60), (50, 90, 30)))
        )
        cos, sin = math.cos(angle), math.sin(angle)
        outline = [
            (cx + length * math.cos(t) * cos - breadth * math.sin(t) * sin,
             cy + length * math.cos(t) * sin + breadth * math.sin(t) * cos)
            for t in (k * math.pi / 5 for k in range(10))
        ]  # fmt: skip
        draw.polygon(outline, fill=colour)
        draw.line([outline[0], outline[5]], fill=tuple(max(0, c - 40) for c in colour), width=2)
    return _as_camera(image, rng)


def portrait(size: tuple[int, int], rng: random.Random) -> Any:
    """A face against a blurred background of lights (bokeh): large smooth areas, one sharp subject with hair."""
    from PIL import Image, ImageDraw, ImageFilter, ImageOps

    width, height = size
    quarter = (width // 4, height // 4)
    background = ImageOps.colorize(_fractal(rng, quarter, (300, 120)), (60, 40, 36), (160, 120, 90))
    draw = ImageDraw.Draw(background)
    for _ in range(90):
        cx, cy, r = rng.uniform(0, quarter[0]), rng.uniform(0, quarter[1]), rng.uniform(10, 40)
        colour = rng.choice(((255, 210, 150), (255, 180, 120), (200, 220, 255), (255, 240, 200)))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    image = background.filter(ImageFilter.GaussianBlur(9)).resize(size, Image.Resampling.BICUBIC)
    shoulders = Image.new("L", size, 0)
    ImageDraw.Draw(shoulders).ellipse((width * 0.18, height * 0.7, width * 0.82, height * 1.6), fill=255)
    fabric = ImageOps.colorize(_fractal(rng, size, (80, 20, 5, 2), persistence=0.8), (30, 40, 80), (90, 110, 170))
    image = Image.composite(fabric, image, shoulders)
    face_box = (width * 0.36, height * 0.2, width * 0.64, height * 0.78)
    face_size = (int(face_box[2] - face_box[0]), int(face_box[3] - face_box[1]))
    skin = ImageOps.colorize(
        Image.radial_gradient("L").resize(face_size), (236, 196, 170), (150, 100, 80), mid=(214, 166, 138)
    )
    mask = Image.new("L", face_size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, face_size[0] - 1, face_size[1] - 1), fill=255)
    image.paste(skin, (int(face_box[0]), int(face_box[1])), mask)
    draw = ImageDraw.Draw(image)
    for eye_x in (0.45, 0.55):
        ex, ey = width * eye_x, height * 0.42
        draw.ellipse((ex - 70, ey - 30, ex + 70, ey + 30), fill=(245, 245, 240))
        draw.ellipse((ex - 26, ey - 26, ex + 26, ey + 26), fill=(70, 50, 30))
    draw.arc((width * 0.45, height * 0.55, width * 0.55, height * 0.65), 20, 160, fill=(150, 60, 60), width=12)
    for _ in range(3_000):  # hair: thin random-walk strands over the top of the head
        x, y = rng.uniform(width * 0.34, width * 0.66), rng.uniform(height * 0.14, height * 0.3)
        angle = rng.uniform(math.pi * 0.3, math.pi * 0.7)
        points = [(x, y)]
        for _step in range(12):
            angle += rng.uniform(-0.25, 0.25)
            x, y = x + 28 * math.cos(angle), y + 28 * math.sin(angle)
            points.append((x, y))
        tone = rng.randrange(30, 90)
        draw.line(points, fill=(tone, int(tone * 0.7), int(tone * 0.5)), width=rng.choice((2, 3)))
    return _as_camera(image, rng, luma_amount=6)


def document(size: tuple[int, int], rng: random.Random) -> Any:
    """A printed page photographed on a desk: text, rules, uneven light, slightly turned."""
    from PIL import Image, ImageChops, ImageDraw, ImageOps

    width, height = size
    page_size = (int(width * 0.8), int(height * 0.92))
    page = ImageOps.colorize(_fractal(rng, page_size, (300, 60, 8)), (226, 222, 210), (246, 244, 236))
    draw = ImageDraw.Draw(page)
    words = ("photo", "library", "album", "trash", "favourite", "preview", "upload", "worker", "quality", "bytes")
    draw.text((160, 120), "Quarterly report: preview formats", font=_font(110), fill=(20, 20, 30))
    y = 330
    while y < page_size[1] - 520:
        line = " ".join(rng.choice(words) for _ in range(rng.randrange(6, 11)))
        draw.text((160, y), line.capitalize() + ".", font=_font(54), fill=(40, 40, 48))
        y += 78
    for row in range(6):  # a small table
        top = page_size[1] - 480 + row * 70
        draw.line((160, top, page_size[0] - 160, top), fill=(60, 60, 70), width=3)
        for column in range(4):
            draw.text((180 + column * 700, top + 10), f"{rng.randrange(100, 9999):,}", font=_font(44), fill=(30,) * 3)
    desk = ImageOps.colorize(_fractal(rng, size, (500, 120, 30, 6), persistence=0.7), (90, 60, 36), (160, 112, 70))
    turned = page.rotate(1.6, Image.Resampling.BICUBIC, expand=True)
    mask = Image.new("L", page_size, 255).rotate(1.6, Image.Resampling.BICUBIC, expand=True)
    desk.paste(turned, ((width - turned.width) // 2, (height - turned.height) // 2), mask)
    light = ImageOps.colorize(Image.radial_gradient("L").resize(size), (255, 255, 255), (150, 150, 140))
    return _as_camera(ImageChops.multiply(desk, light), rng, luma_amount=6)


def night(size: tuple[int, int], rng: random.Random) -> Any:
    """A street at night: dark, lamps with halos, lit windows, high-ISO noise in luma and colour."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    width, height = size
    image = _gradient(size, (8, 10, 26), (34, 30, 44))
    draw = ImageDraw.Draw(image)
    x = 0
    while x < width:
        building = rng.randrange(300, 700)
        top = rng.randrange(int(height * 0.2), int(height * 0.55))
        draw.rectangle((x, top, x + building, height), fill=(14, 14, 18))
        for wy in range(top + 40, height - 300, 110):
            for wx in range(x + 30, x + building - 60, 90):
                if rng.random() < 0.18:
                    draw.rectangle((wx, wy, wx + 44, wy + 64), fill=(220, 180, 90))
        x += building
    quarter = (width // 4, height // 4)
    glow = Image.new("RGB", quarter, (0, 0, 0))
    glow_draw = ImageDraw.Draw(glow)
    for lamp in range(7):
        cx, cy = (lamp + 0.5) * quarter[0] / 7, quarter[1] * 0.55
        glow_draw.ellipse((cx - 30, cy - 30, cx + 30, cy + 30), fill=(255, 190, 110))
    halo = glow.filter(ImageFilter.GaussianBlur(22)).resize(size, Image.Resampling.BICUBIC)
    image = ImageChops.screen(image, halo)
    for lamp in range(7):
        cx, cy = (lamp + 0.5) * width / 7, height * 0.55
        draw = ImageDraw.Draw(image)
        draw.ellipse((cx - 22, cy - 22, cx + 22, cy + 22), fill=(255, 250, 235))
    return _as_camera(image, rng, luma_amount=22, chroma_amount=14)


def gradients(size: tuple[int, int], rng: random.Random) -> Any:
    """Section 4's sample: smooth gradients with fine grain."""
    from bench import previews

    return previews.photo_like(size)


# name: (painter, description)
SCENES: dict[str, tuple[Callable[[tuple[int, int], random.Random], Any], str]] = {
    "landscape": (landscape, "sky, clouds, rock, meadow"),
    "city": (city, "buildings, window grids, signs with text"),
    "foliage": (foliage, "dense leaves"),
    "portrait": (portrait, "face, hair, blurred lights"),
    "document": (document, "a printed page on a desk"),
    "night": (night, "street at night, high-ISO noise"),
    "gradients": (gradients, "section 4's gradients with grain"),
}


def generate_corpus(directory: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """The corpus' files (scenes drawn and cached, real photos found): name, path, description, real."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f"v{SAMPLES_VERSION}"
    corpus = []
    for index, (name, (painter, description)) in enumerate(SCENES.items()):
        path = directory / f"{name}.jpg"
        if not (path.exists() and stamp.exists()):
            log(f"  formats: drawing {name} ({CAMERA_SIZE[0]}×{CAMERA_SIZE[1]})")
            image = painter(CAMERA_SIZE, random.Random(1000 + index))  # noqa: S311 - pictures, not secrets
            image.save(path, format="JPEG", quality=CAMERA_QUALITY)
        corpus.append({"name": name, "path": path, "description": description, "real": False})
    stamp.touch()
    seen: set[str] = set()
    for pattern, description in REAL_PHOTOS:
        for found in sorted(_glob(pattern)):
            digest = hashlib.sha256(found.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            corpus.append(
                {"name": found.stem, "path": found, "description": description, "real": True, "pattern": pattern}
            )
            break
    return corpus


def _glob(pattern: str) -> list[Path]:
    expanded = Path(pattern).expanduser()
    anchor = Path(expanded.anchor)
    return [path for path in anchor.glob(str(expanded.relative_to(anchor))) if path.is_file()]


# --- encoding and timing ----------------------------------------------------------------------------------------


def encode(image: Any, encoding: str, quality: int) -> bytes:
    """One preview's bytes. JPEG as chalicelib.imaging writes it (optimised Huffman tables; Pillow's 4:2:0);
    WebP and AVIF with Pillow's defaults (WebP method 4; AVIF speed 6, 4:2:0, libaom)."""
    buffer = io.BytesIO()
    if encoding == "jpeg":
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    elif encoding == "jpeg_progressive":
        image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    elif encoding == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    elif encoding == "avif":
        image.save(buffer, format="AVIF", quality=quality)
    else:
        raise ValueError(f"unknown encoding {encoding}")
    return buffer.getvalue()


def decode(data: bytes) -> Any:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def cpu_ms(function: Callable[[], Any]) -> tuple[Any, float]:
    """The result and the process CPU time it took (every thread: AVIF encodes on several), in ms."""
    started = time.process_time()
    result = function()
    return result, (time.process_time() - started) * 1000


def draft_scale(width: int, edge: int) -> int:
    """The JPEG DCT scale denominator (1, 2, 4 or 8) Pillow's draft picks to cover `edge` from `width`."""
    return next(scale for scale in (8, 4, 2, 1) if width // scale >= min(width, edge))


def _fit_within(size: tuple[int, int], edge: int) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if longest <= edge:
        return size
    return max(1, round(width * edge / longest)), max(1, round(height * edge / longest))


def _resized(image: Any, edge: int) -> Any:
    from PIL import Image

    size = _fit_within(image.size, edge)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def worker_previews(data: bytes, edges: Sequence[int]) -> list[Any]:
    """The worker's pipeline (chalicelib.imaging.process) for previews fitting `edges`, largest first: a JPEG
    decoded at the smallest DCT scale covering the largest edge, each smaller preview resized from the one before."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", _fit_within(opened.size, edges[0]))
        image = opened.convert("RGB")
    out = []
    for edge in edges:
        image = _resized(image, edge)
        out.append(image)
    return out


def _worker_run(data: bytes, edges: Sequence[int], quality: int) -> list[int]:
    return [len(encode(image, "jpeg", quality)) for image in worker_previews(data, edges)]


# --- the measurement --------------------------------------------------------------------------------------------

ENCODINGS = ("jpeg", "jpeg_progressive", "webp", "avif")
ENCODING_NAMES = {
    "jpeg": "JPEG q82 (today)",
    "jpeg_progressive": "JPEG q82 progressive",
    "webp": "WebP at equal SSIM",
    "avif": "AVIF at equal SSIM",
}


WEBP_WORTH = 0.15  # the median saving at both sizes that makes a second format worth its keys and code
FIXED_PERCENTILE = 0.75  # the one WebP quality a worker would use: the 75th percentile of the matched ones

# Where the quality search starts on the first photo (then from the answer for the photo before): about where WebP
# and AVIF match JPEG q82 on photos.
FIRST_HINTS = {"webp": 80, "avif": 64}


def _compare(reference: Any, edge_name: str, hints: dict[str, int], jpeg_quality: int) -> dict[str, Any]:
    """Every encoding of one preview: quality, bytes, SSIM (luma, chroma), encode CPU."""
    from PIL import ImageChops

    ref_luma = SsimReference(luma(reference))
    ref_chroma = [SsimReference(plane) for plane in chroma(reference)]
    encoded: dict[tuple[str, int], tuple[bytes, float]] = {}
    decoded: dict[tuple[str, int], Any] = {}
    scores: dict[tuple[str, int], float] = {}

    def encoded_at(encoding: str, quality: int) -> bytes:
        if (encoding, quality) not in encoded:
            encoded[(encoding, quality)] = cpu_ms(lambda: encode(reference, encoding, quality))
        return encoded[(encoding, quality)][0]

    def decoded_at(encoding: str, quality: int) -> Any:
        if (encoding, quality) not in decoded:
            decoded[(encoding, quality)] = decode(encoded_at(encoding, quality))
        return decoded[(encoding, quality)]

    def luma_ssim(encoding: str, quality: int) -> float:
        if (encoding, quality) not in scores:
            scores[(encoding, quality)] = ref_luma.ssim(luma(decoded_at(encoding, quality)))
        return scores[(encoding, quality)]

    target = luma_ssim("jpeg", jpeg_quality)
    out: dict[str, Any] = {"size": list(reference.size), "target": target}
    for encoding in ENCODINGS:
        reached = True
        if encoding.startswith("jpeg"):
            quality = jpeg_quality
        else:
            key = f"{edge_name}/{encoding}"
            hint = hints.get(key, FIRST_HINTS[encoding])
            found = lowest_quality_reaching(target, functools.partial(luma_ssim, encoding), hint=hint)
            reached = found is not None
            quality = found if found is not None else 100
            hints[key] = quality
        data = encoded_at(encoding, quality)
        times = [encoded[(encoding, quality)][1]]
        times += [
            cpu_ms(functools.partial(encode, reference, encoding, quality))[1] for _ in range(TIMING_REPETITIONS - 1)
        ]
        image = decoded_at(encoding, quality)
        if (
            encoding == "jpeg_progressive"
            and ImageChops.difference(image, decoded_at("jpeg", quality)).getbbox() is None
        ):
            same = out["jpeg"]  # the same coefficients in another order: the same pixels, so the same SSIM
            similarity, chroma_similarity, identical = same["ssim"], same["chroma_ssim"], True
        else:
            cb, cr = chroma(image)
            similarity = luma_ssim(encoding, quality)
            chroma_similarity = (ref_chroma[0].ssim(cb) + ref_chroma[1].ssim(cr)) / 2
            identical = False
        out[encoding] = {
            "quality": quality,
            "reached": reached,
            "bytes": len(data),
            "ssim": similarity,
            "chroma_ssim": chroma_similarity,
            "encode_cpu_ms": common.median(times),
            "searched": len([1 for (e, _q) in scores if e == encoding]),
        }
        if encoding == "jpeg_progressive":
            out[encoding]["identical_pixels"] = identical
    return out


def measure(*, log: Callable[[str], None]) -> dict[str, Any]:
    from PIL import features

    from chalicelib import imaging

    if not (features.check("webp") and features.check("avif")):
        raise RuntimeError("this Pillow cannot encode both WebP and AVIF, which the formats section compares")
    small_edge, large_edge, jpeg_quality = imaging.SMALL_EDGE, imaging.LARGE_EDGE, imaging.JPEG_QUALITY
    corpus = generate_corpus(CACHE_DIR, log)
    edges = {"small": small_edge, "medium": MEDIUM_EDGE, "large": large_edge, "xlarge": XLARGE_EDGE}
    hints: dict[str, int] = {}
    photos, references = [], []
    for entry in corpus:
        log(f"  formats: {entry['name']}")
        data = entry["path"].read_bytes()
        large, small = worker_previews(data, (large_edge, small_edge))
        references.append({"large": large, "small": small})
        with_size = decode(data).size if entry["real"] else CAMERA_SIZE
        photo: dict[str, Any] = {
            "name": entry["name"],
            "description": entry["description"],
            "real": entry["real"],
            "path": str(entry["path"]),
            "original_size": list(with_size),
            "original_bytes": len(data),
            "previews": {
                "large": _compare(large, "large", hints, jpeg_quality),
                "small": _compare(small, "small", hints, jpeg_quality),
            },
        }
        if max(with_size) > XLARGE_EDGE:
            photo["sizes"] = _sizes(data, large, edges, jpeg_quality)
        photos.append(photo)
    # What the worker would run: one WebP quality for every photo, high enough for most (FIXED_PERCENTILE of the
    # qualities the searches found).
    fixed: dict[str, Any] = {}
    for preview in ("large", "small"):
        found = [float(p["previews"][preview]["webp"]["quality"]) for p in photos]
        quality = round(common.percentile(found, FIXED_PERCENTILE))
        fixed[preview] = {"quality": quality, "photos": []}
        for reference in references:
            image = reference[preview]
            data = encode(image, "webp", quality)
            similarity = SsimReference(luma(image)).ssim(luma(decode(data)))
            fixed[preview]["photos"].append({"bytes": len(data), "ssim": similarity})
    real_found = {entry["pattern"]: 1 for entry in corpus if entry["real"]}
    return {
        "photos": photos,
        "real_found": real_found,
        "fixed_webp": fixed,
        "edges": edges,
        "jpeg_quality": jpeg_quality,
        "libraries": {
            "libjpeg": features.version("jpg"),
            "libwebp": features.version("webp"),
            "libavif": features.version("avif"),
            "AV1 codecs": _avif_codecs(),
        },
    }


def _avif_codecs() -> str:
    try:
        from PIL import _avif

        return str(_avif.codec_versions())
    except (ImportError, AttributeError):
        return "n/a"


def _sizes(data: bytes, large: Any, edges: dict[str, int], jpeg_quality: int) -> dict[str, Any]:
    """The sizes not made today, as JPEG q82: the 2048 (from a decode at the DCT scale covering it) and a 512 (from
    today's 1024); and the worker's whole pipeline (decode, resizes, encodes) as today and with a 2048 px preview,
    from which the 1024 is then made."""
    xlarge = worker_previews(data, (edges["xlarge"],))[0]
    medium = _resized(large, edges["medium"])
    out: dict[str, Any] = {"bytes": {}, "encode_cpu_ms": {}}
    for name, image in (("xlarge", xlarge), ("medium", medium)):
        runs = [cpu_ms(functools.partial(encode, image, "jpeg", jpeg_quality)) for _ in range(TIMING_REPETITIONS)]
        out["bytes"][name] = len(runs[0][0])
        out["encode_cpu_ms"][name] = common.median(ms for _data, ms in runs)
    today, with_xlarge = [], []
    for _ in range(PIPELINE_REPETITIONS):  # interleaved, so drift on the shared machine hits both alike
        today.append(cpu_ms(lambda: _worker_run(data, (edges["large"], edges["small"]), jpeg_quality))[1])
        with_xlarge.append(
            cpu_ms(lambda: _worker_run(data, (edges["xlarge"], edges["large"], edges["small"]), jpeg_quality))[1]
        )
    out["pipeline_cpu_ms"] = {"today": common.median(today), "with_xlarge": common.median(with_xlarge)}
    return out


# --- the viewer's side: what each view needs and downloads -------------------------------------------------------


def views() -> list[dict[str, Any]]:
    """The web client's views at three screens: the slot's CSS width (web/styles.css, at MAIN_MAX_WIDTH on a desktop,
    PHONE_VIEWPORT on a phone), the device pixel ratio, and the preview width that fills it (a gallery tile is square
    and `object-fit: cover`, so a landscape preview is drawn LANDSCAPE times wider than the tile)."""
    desktop = MAIN_MAX_WIDTH - 2 * DESKTOP_PADDING
    phone = PHONE_VIEWPORT - 2 * PHONE_PADDING

    def tile(content: int) -> float:
        columns = max(1, (content + TILE_GAP) // (TILE_MIN + TILE_GAP))
        return (content - (columns - 1) * TILE_GAP) / columns

    photo_desktop = (desktop - PHOTO_VIEW_GAP) * 2 / 3  # the 2fr column; the 1fr one stays above its 16rem minimum
    screens = (("desktop, 1×", desktop, 1.0), ("desktop, 2×", desktop, 2.0), ("phone, 3×", phone, 3.0))
    out = []
    for screen, content, ratio in screens:
        out.append(
            {
                "view": f"gallery page ({GALLERY_PAGE} tiles)",
                "screen": screen,
                "slot_css": tile(content),
                "drawn_css": tile(content) * LANDSCAPE,  # what `sizes` should say: the width the preview is drawn at
                "ratio": ratio,
                "needed_px": tile(content) * LANDSCAPE * ratio,
                "images": GALLERY_PAGE,
                "today": "small",
            }
        )
    for screen, content, ratio in screens:
        slot = photo_desktop if content == desktop else content
        out.append(
            {
                "view": "photo view",
                "screen": screen,
                "slot_css": slot,
                "drawn_css": slot,
                "ratio": ratio,
                "needed_px": slot * ratio,
                "images": 1,
                "today": "large",
            }
        )
    return out


# --- the report ---------------------------------------------------------------------------------------------------


def _change(new: float, old: float) -> float:
    return new / old - 1


def _pct(value: float) -> str:
    if round(value * 100) == 0:
        return "±0%"
    return f"{value * 100:+.0f}%".replace("-", "−")


def _spread(values: Sequence[float]) -> str:
    """Median (min … max) of relative changes."""
    return f"{_pct(common.median(values))} ({_pct(min(values))} … {_pct(max(values))})"


def _kb(value: float) -> str:
    return fmt_num(value / 1000, 1)


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The figures the section's prose quotes, per preview and encoding: medians over the corpus."""
    photos = data["photos"]
    out: dict[str, Any] = {}
    for preview in ("large", "small"):
        rows = [photo["previews"][preview] for photo in photos]
        entry: dict[str, Any] = {}
        for encoding in ENCODINGS:
            changes = [_change(row[encoding]["bytes"], row["jpeg"]["bytes"]) for row in rows]
            entry[encoding] = {
                "bytes": common.median(row[encoding]["bytes"] for row in rows),
                "change": common.median(changes),
                "changes": changes,
                "larger": [p["name"] for p, c in zip(photos, changes, strict=True) if c > 0],
                "encode_cpu_ms": common.median(row[encoding]["encode_cpu_ms"] for row in rows),
                "quality": [row[encoding]["quality"] for row in rows],
                "ssim": common.median(row[encoding]["ssim"] for row in rows),
                "chroma_ssim": common.median(row[encoding]["chroma_ssim"] for row in rows),
                "not_reached": [p["name"] for p, row in zip(photos, rows, strict=True) if not row[encoding]["reached"]],
            }
        fixed = data["fixed_webp"][preview]
        fixed_changes = [
            _change(f["bytes"], row["jpeg"]["bytes"]) for f, row in zip(fixed["photos"], rows, strict=True)
        ]
        entry["fixed_webp"] = {
            "quality": fixed["quality"],
            "change": common.median(fixed_changes),
            "changes": fixed_changes,
            "ssim_deltas": [f["ssim"] - row["target"] for f, row in zip(fixed["photos"], rows, strict=True)],
        }
        out[preview] = entry
    camera = [photo for photo in photos if "sizes" in photo]  # camera-size photos: the 2048 exists for them
    sized = [photo["sizes"] for photo in camera]

    def per_photo(name: str, field: str) -> list[float]:
        if name in ("small", "large"):
            key = "bytes" if field == "bytes" else "encode_cpu_ms"
            return [photo["previews"][name]["jpeg"][key] for photo in camera]
        return [s[field][name] for s in sized]

    out["bytes_at"] = {name: common.median(per_photo(name, "bytes")) for name in data["edges"]}
    out["bytes_range"] = {
        name: (min(per_photo(name, "bytes")), max(per_photo(name, "bytes"))) for name in data["edges"]
    }
    out["encode_at"] = {name: common.median(per_photo(name, "encode_cpu_ms")) for name in data["edges"]}
    out["pipeline_today"] = common.median(s["pipeline_cpu_ms"]["today"] for s in sized)
    out["pipeline_xlarge"] = common.median(s["pipeline_cpu_ms"]["with_xlarge"] for s in sized)
    out["pipeline_ratio"] = common.median(
        s["pipeline_cpu_ms"]["with_xlarge"] / s["pipeline_cpu_ms"]["today"] for s in sized
    )
    out["sized_photos"] = len(sized)
    return out


def download_rows(data: dict[str, Any], figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Per view: what it downloads today and with each srcset, from the corpus' median bytes per edge."""
    edges = data["edges"]
    by_width = {edges[name]: figures["bytes_at"][name] for name in edges}
    three = (edges["small"], edges["large"], edges["xlarge"])
    four = (edges["small"], edges["medium"], edges["large"], edges["xlarge"])
    rows = []
    for view in views():
        today = edges[view["today"]]
        rows.append(
            {
                **view,
                "today_width": today,
                "today_bytes": by_width[today] * view["images"],
            }
        )
        for name, candidates in (("three", three), ("four", four)):
            for engine in ("webkit", "blink"):
                width = srcset_pick(candidates, view["drawn_css"], view["ratio"], engine=engine)
                rows[-1][f"{name}_{engine}_width"] = width
                rows[-1][f"{name}_{engine}_bytes"] = by_width[width] * view["images"]
    return rows


def storage_figures(figures: dict[str, Any]) -> dict[str, float]:
    """What a 2048 px preview costs: S3 storage per photo-month and for a month's uploads, the worker's extra
    billed time (bench/cost.py's model: CPU stretched by the memory's CPU share, plus the extra PUT's round trip)
    and the PUT itself."""
    prices, assumptions = cost.PRICES, cost.ASSUMPTIONS
    uploads, memory = assumptions["uploads"], assumptions["worker_memory_mb"]
    xlarge = figures["bytes_at"]["xlarge"]
    today_previews = figures["bytes_at"]["large"] + figures["bytes_at"]["small"]
    original = assumptions["average_upload_mb"] * 1024 * 1024
    extra_cpu = figures["pipeline_xlarge"] - figures["pipeline_today"]
    stretch = max(1.0, assumptions["full_vcpu_memory_mb"] / memory)
    extra_ms = extra_cpu * stretch + assumptions["aws_call_latency_ms"]
    return {
        "per_photo_month": xlarge / 1024**3 * prices["s3_storage_gb_month"],
        "month_of_uploads_gb": uploads * xlarge / 1024**3,
        "month_of_uploads_usd": uploads * xlarge / 1024**3 * prices["s3_storage_gb_month"],
        "share_of_photo": xlarge / (original + today_previews),
        "vs_today_previews": xlarge / today_previews,
        "extra_cpu_ms": extra_cpu,
        "extra_billed_ms": extra_ms,
        "worker_usd": uploads * cost.gb_seconds(extra_ms, memory) * prices["lambda_gb_second"],
        "put_usd": uploads * prices["s3_put_class_request"],
        "uploads": uploads,
        "memory_mb": memory,
    }


def section(results: dict[str, Any]) -> str:
    data = results["formats"]
    figures = summary(data)
    money = storage_figures(figures)
    return "\n".join(
        [
            SECTION_HEADING,
            "",
            _intro(results),
            "",
            "### Equal quality: bytes and encode time per preview",
            "",
            _quality_table(data, figures),
            "",
            "Per photo (KB; the quality each search found; the change against today's JPEG of the same preview):",
            "",
            _photo_table(data),
            "",
            "What browsers decode (not measured: caniuse.com and release notes, as of 2025):",
            "",
            table(["format", "decoded by", "needs a fallback for"], list(DECODE_SUPPORT)),
            "",
            "### Sizes: a 2048 px preview, and what each view downloads",
            "",
            *_sizes_part(data, figures, money),
            "",
            *findings(data, figures, money),
        ]
    )


def _intro(results: dict[str, Any]) -> str:
    data = results["formats"]
    photos, edges, quality = data["photos"], data["edges"], data["jpeg_quality"]
    how = (
        "a whole `make bench` run"
        if results.get("complete")
        else "`.venv/bin/python -m bench --only formats` (this section alone; the rest of this report is from the run "
        "named at the top)"
    )
    seconds = results.get("timings", {}).get("formats")
    took = f" in {seconds:.0f} s" if seconds else ""
    scenes = [p for p in photos if not p["real"]]
    real = [p for p in photos if p["real"]]
    corpus = ", ".join(f"*{p['name']}* ({p['description']})" for p in scenes)
    looked = ", ".join(f"`{pattern}` ({data['real_found'].get(pattern, 0)})" for pattern, _ in REAL_PHOTOS)
    real_text = (
        "; and the real photos found on this machine: "
        + ", ".join(
            f"*{p['name']}* ({p['description']}, {p['original_size'][0]}×{p['original_size'][1]}, `{p['path']}`)"
            for p in real
        )
        if real
        else "; no real photo was found on this machine"
    )
    libraries = ", ".join(f"{name} {version}" for name, version in data["libraries"].items())
    return (
        f"Measured on {results['started']} by {how}{took} (load average {results['machine']['load_at_start']} at "
        f"the start; the encode and pipeline figures are CPU time, which load stretches less than wall time), by "
        f"bench/formats.py in one process. The corpus: {len(scenes)} scenes drawn at "
        f"{CAMERA_SIZE[0]}×{CAMERA_SIZE[1]} and saved as a phone would (JPEG q{CAMERA_QUALITY}; cached in "
        f"build/bench-formats): {corpus}{real_text}. The repository has no photos and nothing is downloaded; the "
        f"bench looks for real ones (how many it found in brackets) in {looked}. Drawn scenes are cleaner than "
        "photos (flat facades, crisp text), which favours the newer codecs: weigh the real photo's rows. Each "
        "photo's previews are made "
        f"as the worker makes them (JPEG draft decode, Lanczos to fit {edges['large']}, the {edges['small']} from "
        f"that), then encoded as today (JPEG q{quality}, optimised Huffman tables, 4:2:0), as the same JPEG "
        "progressive, and as WebP (Pillow's defaults: method 4) and AVIF (speed 6, libaom, 4:2:0) at the lowest "
        "quality whose SSIM reaches the JPEG's (`lowest_quality_reaching`: a secant search from the previous "
        "photo's answer, 3 to 6 encodes). *SSIM* is luma SSIM (Rec. 601 Y in floating point; Gaussian window "
        "σ 1.5, 11 taps; K1 0.01, K2 0.03; the 5-pixel border left out: scikit-image's `structural_similarity` "
        "with `gaussian_weights=True, use_sample_covariance=False, data_range=255`), computed with Pillow alone; "
        "*chroma SSIM* is the mean of Cb's and Cr's at half resolution (all three codecs store 4:2:0), a check "
        "that matching luma did not cost colour. *Encode CPU* is the process's CPU time (every thread) for one "
        f"preview, the median of {TIMING_REPETITIONS} encodes: what the worker pays on top of decoding and "
        f"resizing. Versions: {libraries}."
    )


def _quality_table(data: dict[str, Any], figures: dict[str, Any]) -> str:
    photos, edges = data["photos"], data["edges"]
    rows = []
    for preview in ("small", "large"):
        entry = figures[preview]
        for encoding in ENCODINGS:
            e = entry[encoding]
            qualities = e["quality"]
            rows.append(
                (
                    f"{edges[preview]} px",
                    ENCODING_NAMES[encoding],
                    str(qualities[0])
                    if len(set(qualities)) == 1
                    else f"{common.median(qualities):.0f} ({min(qualities)}–{max(qualities)})",
                    f"{e['ssim']:.4f}",
                    f"{e['chroma_ssim']:.4f}",
                    _kb(e["bytes"]),
                    "—" if encoding == "jpeg" else _spread(e["changes"]),
                    fmt_num(e["encode_cpu_ms"], 1),
                )
            )
        fixed = entry["fixed_webp"]
        short = [d for d in fixed["ssim_deltas"] if d < 0]
        rows.append(
            (
                f"{edges[preview]} px",
                f"WebP q{fixed['quality']} for every photo",
                str(fixed["quality"]),
                f"reaches JPEG's on {len(photos) - len(short)} of {len(photos)}"
                + (f" (worst {min(short):+.4f})".replace("-", "−") if short else ""),
                "",
                "",
                _spread(fixed["changes"]),
                "",
            )
        )
    headers = [
        "preview",
        "encoding",
        "quality: median (range)",
        "luma SSIM, median",
        "chroma SSIM, median",
        "KB, median",
        "bytes vs today's JPEG: median (min … max)",
        "encode CPU ms, median",
    ]
    return table(headers, rows)


def _photo_table(data: dict[str, Any]) -> str:
    rows = []
    for photo in data["photos"]:
        for preview in ("large", "small"):
            entry = photo["previews"][preview]
            jpeg = entry["jpeg"]

            def cell(encoding: str, entry: dict[str, Any] = entry, jpeg: dict[str, Any] = jpeg) -> str:
                e = entry[encoding]
                prefix = "" if encoding.startswith("jpeg") else f"q{e['quality']}{'' if e['reached'] else ' (max)'}: "
                return f"{prefix}{_kb(e['bytes'])} ({_pct(_change(e['bytes'], jpeg['bytes']))})"

            rows.append(
                (
                    photo["name"] + (" (real)" if photo["real"] else ""),
                    "×".join(map(str, entry["size"])),
                    f"{_kb(jpeg['bytes'])} ({entry['target']:.4f})",
                    cell("jpeg_progressive"),
                    cell("webp"),
                    cell("avif"),
                )
            )
    headers = ["photo", "preview", f"JPEG q{data['jpeg_quality']} KB (SSIM)", "progressive JPEG", "WebP", "AVIF"]
    return table(headers, rows)


def _sizes_part(data: dict[str, Any], figures: dict[str, Any], money: dict[str, float]) -> list[str]:
    edges = data["edges"]
    made_today = {edges["small"], edges["large"]}
    size_rows = []
    for name in ("small", "medium", "large", "xlarge"):
        low, high = figures["bytes_range"][name]
        size_rows.append(
            (
                f"{edges[name]} px" + ("" if edges[name] in made_today else " (not made today)"),
                _kb(figures["bytes_at"][name]),
                f"{_kb(low)}–{_kb(high)}",
                fmt_num(figures["encode_at"][name], 1),
            )
        )
    draft_l, draft_xl = draft_scale(CAMERA_SIZE[0], edges["large"]), draft_scale(CAMERA_SIZE[0], edges["xlarge"])
    original_mb = cost.ASSUMPTIONS["average_upload_mb"]
    download = []
    for row in download_rows(data, figures):

        def pick(name: str, row: dict[str, Any] = row) -> str:
            cells = []
            for engine in ("webkit", "blink"):
                width, size = row[f"{name}_{engine}_width"], row[f"{name}_{engine}_bytes"]
                cells.append(f"{width} px: {_kb(size)} ({_pct(_change(size, row['today_bytes']))})")
            return cells[0] if cells[0] == cells[1] else f"{cells[0]}; Chrome {cells[1]}"

        scale = row["needed_px"] / row["today_width"]
        download.append(
            (
                row["view"],
                row["screen"],
                fmt_num(row["needed_px"]),
                f"{row['today_width']} px ×{scale:.2f}: {_kb(row['today_bytes'])}",
                pick("three"),
                pick("four"),
            )
        )
    return [
        table([f"JPEG q{data['jpeg_quality']}, fits", "KB, median", "KB, range", "encode CPU ms, median"], size_rows),
        "",
        f"The worker's whole pipeline for a {CAMERA_SIZE[0]}×{CAMERA_SIZE[1]} JPEG (decode, resizes, JPEG encodes; "
        f"median of {figures['sized_photos']} photos, {PIPELINE_REPETITIONS} run each, interleaved): "
        f"{fmt_num(figures['pipeline_today'])} ms CPU today, {fmt_num(figures['pipeline_xlarge'])} ms with a "
        f"{edges['xlarge']} px preview (×{figures['pipeline_ratio']:.1f}, +{fmt_num(money['extra_cpu_ms'])} ms). "
        f"Most of that is not the encode: to cover {edges['large']} the JPEG decoder works at 1/{draft_l} scale "
        f"({CAMERA_SIZE[0] // draft_l} px wide), to cover {edges['xlarge']} at 1/{draft_xl} "
        f"({CAMERA_SIZE[0] // draft_xl} px), and the resizes start from {draft_l**2 // draft_xl**2}× the pixels "
        "(the decode's peak memory grows with them).",
        "",
        f"Storing it: {_kb(figures['bytes_at']['xlarge'])} KB a photo is ${money['per_photo_month']:.7f} a month "
        f"(S3 Standard, bench/cost.py's price), {money['vs_today_previews']:.1f}× today's two previews and "
        f"{money['share_of_photo'] * 100:.0f}% more than a photo stores now (a {original_mb:.0f} MB original and its "
        f"previews). A month of uploads ({money['uploads']:,}) adds {money['month_of_uploads_gb']:.1f} GB, "
        f"${money['month_of_uploads_usd']:.2f} a month for as long as they are kept (after a year of uploads, "
        f"${money['month_of_uploads_usd'] * 12:.2f} a month). The worker's extra {fmt_num(money['extra_cpu_ms'])} ms "
        f"CPU bills as {fmt_num(money['extra_billed_ms'])} ms at {money['memory_mb']} MB (the CPU share, one more "
        f"PUT's round trip): ${money['worker_usd']:.2f} per {money['uploads']:,} uploads, and the PUTs "
        f"${money['put_usd']:.2f}.",
        "",
        f"What a viewer downloads (the corpus' median JPEG bytes per size; slots from web/styles.css at a "
        f"{MAIN_MAX_WIDTH} px-wide desktop and a {PHONE_VIEWPORT} px phone; *needed* is the slot's width times the "
        "device pixel ratio, times 4/3 for a square `cover` tile showing a 4:3 photo, which `sizes` would declare). "
        "Browsers pick srcset candidates differently: Firefox and Safari take the narrowest at least as wide as "
        "needed; Chrome and Edge (Blink's `SelectionLogic`) take the narrower of the two around it unless the "
        "screen's ratio reaches the geometric mean of their densities, so they accept some upscaling (shown as "
        "*Chrome* where it differs). *Today* scales the one preview the view uses; above 1.00× the browser "
        "upscales it (soft on a dense screen).",
        "",
        table(
            [
                "view",
                "screen",
                "device px needed",
                "today: preview, scale, KB",
                f"srcset {edges['small']}/{edges['large']}/{edges['xlarge']}: pick, KB",
                f"srcset {edges['small']}/{edges['medium']}/{edges['large']}/{edges['xlarge']}: pick, KB",
            ],
            download,
        ),
    ]


def monthly_preview_gb(small_bytes: float, large_bytes: float) -> float:
    """Preview bytes downloaded in bench/cost.py's month (its API requests and read mix; small previews per list
    page, the large per photo view), in GB."""
    a = cost.ASSUMPTIONS
    lists = a["api_requests"] * a["mix"]["GET /photos"] * a["previews_fetched_per_list"]
    views_ = a["api_requests"] * a["mix"]["GET /photos/{id}"] * a["previews_fetched_per_get"]
    return float(lists * small_bytes + views_ * large_bytes) / 1024**3


def findings(data: dict[str, Any], figures: dict[str, Any], money: dict[str, float]) -> list[str]:
    """The section's reading of its own figures, and the recommendation they support."""
    edges = data["edges"]
    photos = data["photos"]
    large, small = figures["large"], figures["small"]
    size_l, size_s, size_xl, size_m = edges["large"], edges["small"], edges["xlarge"], edges["medium"]
    real = [p for p in photos if p["real"]]
    jpeg_ms = large["jpeg"]["encode_cpu_ms"] + small["jpeg"]["encode_cpu_ms"]
    webp_ms = large["webp"]["encode_cpu_ms"] + small["webp"]["encode_cpu_ms"]
    avif_ms = large["avif"]["encode_cpu_ms"] + small["avif"]["encode_cpu_ms"]
    pipeline = figures["pipeline_today"]

    def real_text(encoding: str) -> str:
        if not real:
            return "no real photo to check against"
        return "; ".join(
            f"on the real photo *{p['name']}* "
            + ", ".join(
                f"{_pct(_change(p['previews'][v][encoding]['bytes'], p['previews'][v]['jpeg']['bytes']))} at "
                f"{edges[v]} px"
                for v in ("large", "small")
            )
            for p in real
        )

    def larger(encoding: str) -> str:
        names = sorted(set(large[encoding]["larger"]) | set(small[encoding]["larger"]))
        return ", ".join(f"*{name}*" for name in names) if names else "none"

    def bytes_of(encoding: str) -> float:
        return float(large[encoding]["bytes"] + small[encoding]["bytes"])

    gb_today = monthly_preview_gb(small["jpeg"]["bytes"], large["jpeg"]["bytes"])
    gb_webp = monthly_preview_gb(small["webp"]["bytes"], large["webp"]["bytes"])
    uploads = cost.ASSUMPTIONS["uploads"]
    memory = cost.ASSUMPTIONS["worker_memory_mb"]
    stored_gb = uploads * (bytes_of("jpeg") - bytes_of("webp")) / 1024**3
    stretch = max(1.0, cost.ASSUMPTIONS["full_vcpu_memory_mb"] / memory)
    webp_usd = uploads * cost.gb_seconds((webp_ms - jpeg_ms) * stretch, memory) * cost.PRICES["lambda_gb_second"]
    identical = [
        p["previews"][v]["jpeg_progressive"].get("identical_pixels") for p in photos for v in ("large", "small")
    ]
    rows = {(r["view"].split(" (")[0], r["screen"]): r for r in download_rows(data, figures)}
    photo_2x, photo_phone = rows[("photo view", "desktop, 2×")], rows[("photo view", "phone, 3×")]
    gallery_2x, gallery_phone = rows[("gallery page", "desktop, 2×")], rows[("gallery page", "phone, 3×")]
    fixed_l, fixed_s = large["fixed_webp"], small["fixed_webp"]
    short = sum(d < 0 for d in fixed_l["ssim_deltas"]) + sum(d < 0 for d in fixed_s["ssim_deltas"])
    phone_shortfall = 1 - size_l / photo_phone["needed_px"]

    def picks(row: dict[str, Any], name: str, per: str = "") -> str:
        """What each engine downloads for a view, in words."""
        chosen = {}
        for engine in ("webkit", "blink"):
            width, size = row[f"{name}_{engine}_width"], row[f"{name}_{engine}_bytes"]
            change = "as today" if width == row["today_width"] else _pct(_change(size, row["today_bytes"]))
            chosen[engine] = f"the {width} ({_kb(size)} KB{per}, {change})"
        if chosen["webkit"] == chosen["blink"]:
            return f"every browser takes {chosen['webkit']}"
        return f"Firefox and Safari take {chosen['webkit']}, Chrome and Edge {chosen['blink']}"

    return [
        "### What the figures say",
        "",
        f"- **WebP** at equal luma SSIM: {_spread(large['webp']['changes'])} bytes at {size_l} px and "
        f"{_spread(small['webp']['changes'])} at {size_s} px (median, min … max over {len(photos)} photos); "
        f"{real_text('webp')}. Chroma SSIM is no worse ({large['webp']['chroma_ssim']:.4f} against JPEG's "
        f"{large['jpeg']['chroma_ssim']:.4f} at {size_l} px). Larger than JPEG on: {larger('webp')}, where WebP "
        f"needs its highest qualities to keep per-pixel grain. One quality for every photo, as a worker would run "
        f"it (q{fixed_l['quality']} at {size_l}, q{fixed_s['quality']} at {size_s}: the "
        f"{FIXED_PERCENTILE * 100:.0f}th percentile of those found), gives {_pct(fixed_l['change'])} and "
        f"{_pct(fixed_s['change'])}, leaving {short} of {2 * len(photos)} previews a little below the JPEG's SSIM. "
        f"Encoding both previews takes {fmt_num(webp_ms)} ms of CPU against JPEG's {fmt_num(jpeg_ms, 1)} "
        f"(×{webp_ms / jpeg_ms:.0f}): +{(webp_ms - jpeg_ms) / pipeline * 100:.0f}% on the worker's "
        f"{fmt_num(pipeline)} ms pipeline, ${webp_usd:.2f} per {uploads:,} uploads at {memory} MB.",
        f"- **AVIF** at equal luma SSIM: {_spread(large['avif']['changes'])} at {size_l} px and "
        f"{_spread(small['avif']['changes'])} at {size_s} px; {real_text('avif')}. It costs {fmt_num(avif_ms)} ms "
        f"of CPU for both previews (×{avif_ms / jpeg_ms:.0f} JPEG's; the worker's pipeline "
        f"×{(avif_ms + pipeline - jpeg_ms) / pipeline:.1f}), and browsers without it (table above) need a JPEG or "
        "WebP beside it: two files per size, two encodes, a `<picture>` in every view.",
        f"- **Progressive JPEG**, the same pixels ({sum(bool(i) for i in identical)} of {len(identical)} previews "
        f"decode identically): {_spread(large['jpeg_progressive']['changes'])} at {size_l} px, "
        f"{_spread(small['jpeg_progressive']['changes'])} at {size_s} px, for "
        f"{fmt_num(large['jpeg_progressive']['encode_cpu_ms'], 1)} ms of encode instead of "
        f"{fmt_num(large['jpeg']['encode_cpu_ms'], 1)} at {size_l} px, and no change anywhere else.",
        f"- **In money the format barely matters at this scale.** bench/cost.py's month (1M API requests; "
        f"{cost.ASSUMPTIONS['previews_fetched_per_list']} small previews per list, the large per photo view) "
        f"downloads {gb_today:.0f} GB of JPEG previews, {gb_webp:.0f} GB as WebP: "
        f"${(gb_today - gb_webp) * EGRESS_USD_PER_GB:.2f} of egress saved at ${EGRESS_USD_PER_GB}/GB. A month of "
        f"uploads stores {stored_gb:.1f} GB less (${stored_gb * cost.PRICES['s3_storage_gb_month']:.2f} a month). "
        f"What WebP buys is page weight: the same pictures in {gb_webp / gb_today * 100:.0f}% of the bytes, on "
        "every gallery page and photo view.",
        f"- **The {size_xl} px preview** is {_kb(figures['bytes_at']['xlarge'])} KB "
        f"(×{figures['bytes_at']['xlarge'] / figures['bytes_at']['large']:.1f} the {size_l}) and makes the worker's "
        f"pipeline ×{figures['pipeline_ratio']:.1f}. On a 2× desktop the photo view needs "
        f"{fmt_num(photo_2x['needed_px'])} px: today's {size_l} is upscaled ×{photo_2x['needed_px'] / size_l:.2f}; "
        f"with a srcset {picks(photo_2x, 'three')}. On a 3× phone the photo fills "
        f"{fmt_num(photo_phone['slot_css'])} CSS px, {fmt_num(photo_phone['needed_px'])} device px, which the "
        f"{size_l} misses by {phone_shortfall * 100:.0f}%, a difference no one sees: {picks(photo_phone, 'three')}. "
        "Storage and worker cost are small (above).",
        f"- **The gallery** is where dense screens upscale today's previews most: a tile needs "
        f"{fmt_num(gallery_2x['needed_px'])} px on a 2× desktop and {fmt_num(gallery_phone['needed_px'])} on a 3× "
        f"phone, from a {size_s} px preview (×{gallery_2x['needed_px'] / size_s:.1f}, "
        f"×{gallery_phone['needed_px'] / size_s:.1f}). With a srcset of today's sizes, on the 2× desktop "
        f"{picks(gallery_2x, 'three', per=' a page')}, and on the 3× phone {picks(gallery_phone, 'three')}. A "
        f"{size_m} px size would serve the 2× desktop: {picks(gallery_2x, 'four')}.",
        "",
        *recommendation(figures, edges, money, photo_2x=photo_2x, photo_phone=photo_phone),
    ]


def recommendation(
    figures: dict[str, Any],
    edges: dict[str, int],
    money: dict[str, float],
    *,
    photo_2x: dict[str, Any],
    photo_phone: dict[str, Any],
) -> list[str]:
    """What to do, from the figures: WebP if it saves at least WEBP_WORTH at both sizes (median)."""
    large, small = figures["large"], figures["small"]
    size_l, size_s, size_xl = edges["large"], edges["small"], edges["xlarge"]
    phone_shortfall = 1 - size_l / photo_phone["needed_px"]
    fetching = [
        browsers
        for engine, browsers in (("webkit", "Safari (every iPhone) and Firefox"), ("blink", "Chrome and Edge"))
        if photo_phone[f"three_{engine}_width"] == size_xl
    ]
    to_phones = f"which {' and '.join(fetching)} would fetch on 3× phones" if fetching else "in case browsers change"
    lines = ["### Recommendation", ""]
    if large["webp"]["change"] <= -WEBP_WORTH and small["webp"]["change"] <= -WEBP_WORTH:
        lines.append(
            f"- **Switch new previews to WebP (q{large['fixed_webp']['quality']} and "
            f"q{small['fixed_webp']['quality']}), not AVIF; keep old photos' JPEGs.** WebP cuts what every view "
            f"downloads by {-large['webp']['change'] * 100:.0f}–{-small['webp']['change'] * 100:.0f}% at equal SSIM "
            f"({-large['fixed_webp']['change'] * 100:.0f}–{-small['fixed_webp']['change'] * 100:.0f}% at those two "
            "fixed qualities) for a negligible worker cost, and every current browser decodes it. It pays in page "
            "weight, not in dollars (above). AVIF saves more but costs "
            "far more CPU per upload and a fallback for older Apple devices and Edge. What WebP takes: "
            "`keys.preview_object` names `<size>.webp`; each photo records its previews' format (absent = JPEG), so "
            "older photos keep their `.jpg` keys and URLs without a backfill, and `keys.photo_objects` lists both "
            "names so deletes miss nothing; the ingest writes `image/webp` (the Content-Type S3 and CloudFront "
            "serve); chalicelib/media.py signs the previews prefix, so signing does not change. The web client "
            "needs nothing: it puts the URLs it is given in `<img src>`. Safari on macOS 10.15 and iOS 13 would "
            "show no previews of new photos. A backfill is optional: one worker run per old photo, from its "
            "original."
        )
    else:
        lines.append(
            f"- **Keep JPEG.** WebP saves {-large['webp']['change'] * 100:.0f}% at {size_l} px and "
            f"{-small['webp']['change'] * 100:.0f}% at {size_s} px here: too little for a second preview format, "
            "its keys and old photos' previews. AVIF needs a fallback and far more CPU."
        )
    lines.append(
        f"- **Make the {size_l} px JPEG progressive** for as long as JPEGs are written: "
        f"{_pct(large['jpeg_progressive']['change'])} for the same pixels, one argument in "
        f"`imaging._jpeg_preview` (not the {size_s}: {_pct(small['jpeg_progressive']['change'])} median, up to "
        f"{_pct(max(small['jpeg_progressive']['changes']))})."
    )
    lines.append(
        f"- **Add the {size_xl} px preview, for the photo view on wide dense screens only.** It is the one place a "
        f"dense screen upscales today's preview noticeably (×{photo_2x['needed_px'] / size_l:.2f}); it stores "
        f"{_kb(figures['bytes_at']['xlarge'])} KB per photo (${money['month_of_uploads_usd']:.2f} a month per month "
        f"of uploads) and costs {fmt_num(money['extra_cpu_ms'])} ms of worker CPU per upload. Serve it with "
        '`<picture><source media="(min-width: 721px) and (min-resolution: 1.5dppx)" srcset="…xlarge">'
        f'<img src="…large"></picture>`, not a plain srcset, {to_phones} for a {phone_shortfall * 100:.0f}% '
        "shortfall. Hand its URL out from `GET /photos/{id}` (behind CloudFront the "
        "owner's one signature covers the previews prefix, so it costs a string join; without a CDN it is one more "
        "presign), and list it in `keys.photo_objects`. Leave the gallery on the 256 until a 512 is worth its "
        "bytes."
    )
    return lines
