"""Section 4: both previews (1024 and 256, JPEG q82) per image, each in a fresh process: PhotoSky's pipeline
(`chalicelib.imaging.process`) against naive Pillow and pyvips' `thumbnail`.

`python -m bench.previews --method M --file F --type T` is the child. Libraries are imported before the clock
starts; the figures are the first (and only) image the process handles, like a worker's first message. Peak RSS
is the kernel's high-water mark (VmHWM) after the work minus the resident size just before it (interpreter,
libraries and the file's bytes excluded). Not ru_maxrss: on Linux a child's ru_maxrss starts from its parent's
at fork and survives exec, so a child of a big parent reports the parent's peak.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common

METHODS = {"photosky": "PhotoSky pipeline", "pillow": "naive Pillow", "pyvips": "pyvips thumbnail"}
SAMPLES_VERSION = "1"
CACHE_DIR = common.PROJECT_DIR / "build" / "bench-samples"
# name: (file, content type, size, description)
SAMPLES: dict[str, tuple[str, str, tuple[int, int], str]] = {
    "jpeg": ("24mp.jpg", "image/jpeg", (6000, 4000), "24 MP JPEG"),
    "jpeg_rotated": ("24mp-rotated.jpg", "image/jpeg", (6000, 4000), "24 MP JPEG, EXIF orientation 6"),
    "jpeg_progressive": ("24mp-progressive.jpg", "image/jpeg", (6000, 4000), "24 MP progressive JPEG"),
    "png": ("12mp.png", "image/png", (4000, 3000), "12 MP PNG"),
    "webp": ("12mp.webp", "image/webp", (4000, 3000), "12 MP WebP"),
    "heic": ("12mp.heic", "image/heic", (4000, 3000), "12 MP HEIC"),
}
JPEG_SAMPLES = ("jpeg", "jpeg_rotated", "jpeg_progressive")


def photo_like(size: tuple[int, int]) -> Any:
    """Smooth gradients with fine grain: compresses and decodes like a photo (neither flat nor pure noise)."""
    from PIL import Image

    channels = [
        Image.linear_gradient("L").resize(size),
        Image.radial_gradient("L").resize(size),
        Image.linear_gradient("L").rotate(90).resize(size),
    ]
    grain = Image.effect_noise(size, 40)
    return Image.blend(Image.merge("RGB", channels), Image.merge("RGB", [grain, grain, grain]), 0.2)


def generate_samples(directory: Path, log: Callable[[str], None]) -> dict[str, str | None]:
    """Write every sample (cached under build/); returns name → why it is unavailable (None when available)."""
    from PIL import Image

    from tests.support import imaging_samples

    directory.mkdir(parents=True, exist_ok=True)
    unavailable: dict[str, str | None] = {}
    stamp = directory / f"v{SAMPLES_VERSION}"
    pictures: dict[tuple[int, int], Image.Image] = {}

    def picture(size: tuple[int, int]) -> Image.Image:
        if size not in pictures:
            pictures[size] = photo_like(size)
        return pictures[size]

    exif = imaging_samples.exif(taken="2026:11:19 17:42:10", offset="+01:00")
    for name, (filename, _type, size, _description) in SAMPLES.items():
        path = directory / filename
        unavailable[name] = None
        if path.exists() and stamp.exists():
            continue
        log(f"  previews: generating {filename}")
        image = picture(size)
        if name == "jpeg":
            path.write_bytes(imaging_samples.encode(image, "JPEG", quality=90, exif=exif))
        elif name == "jpeg_rotated":
            rotated = imaging_samples.exif(orientation=6, taken="2026:11:19 17:42:10")
            path.write_bytes(imaging_samples.encode(image, "JPEG", quality=90, exif=rotated))
        elif name == "jpeg_progressive":
            path.write_bytes(imaging_samples.encode(image, "JPEG", quality=90, progressive=True, exif=exif))
        elif name == "png":
            path.write_bytes(imaging_samples.encode(image, "PNG", compress_level=3))
        elif name == "webp":
            path.write_bytes(imaging_samples.encode(image, "WEBP", quality=80, method=2))
        elif name == "heic":
            reason = imaging_samples.heic_encoding_unavailable()
            if reason:
                unavailable[name] = reason
                continue
            path.write_bytes(imaging_samples.heic(image, exif=exif))
    stamp.touch()
    return unavailable


def pyvips_unavailable() -> str | None:
    try:
        import pyvips
    except (ImportError, OSError) as e:
        return f"pyvips is not installed here ({e.__class__.__name__}: {e})"
    return None if pyvips.API_mode or pyvips.version(0) >= 8 else "libvips is too old"


# --- child -----------------------------------------------------------------------------------------------------


def _photosky(data: bytes, content_type: str) -> list[tuple[int, int, int]]:
    from chalicelib import imaging

    processed = imaging.process(data, declared_type=content_type)
    return [(p.width, p.height, len(p.data)) for p in (processed.large, processed.small)]


def _pillow(data: bytes, content_type: str) -> list[tuple[int, int, int]]:
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    out = []
    for edge in (1024, 256):
        preview = image.copy()
        preview.thumbnail((edge, edge))
        buffer = io.BytesIO()
        preview.convert("RGB").save(buffer, format="JPEG", quality=82)
        out.append((preview.width, preview.height, buffer.tell()))
    return out


def _pyvips(data: bytes, content_type: str) -> list[tuple[int, int, int]]:
    import pyvips

    # Decode (shrink-on-load, auto-rotate) once to the large size; the small one is made from it.
    large = pyvips.Image.thumbnail_buffer(data, 1024, height=1024, size="down")
    if large.hasalpha():
        large = large.flatten(background=[255, 255, 255])
    large = large.copy_memory()
    small = large.thumbnail_image(256, height=256, size="down")
    out = []
    for image in (large, small):
        encoded = image.jpegsave_buffer(Q=82, optimize_coding=True, keep="none")
        out.append((image.width, image.height, len(encoded)))
    return out


def _prepare(method: str, content_type: str) -> Callable[[bytes, str], list[tuple[int, int, int]]]:
    """Import (and register) what the method needs before the clock starts."""
    if method == "photosky":
        from chalicelib import imaging

        if content_type == "image/heic":
            imaging._register_heif_opener()
        return _photosky
    if method == "pillow":
        from PIL import Image, ImageOps  # noqa: F401

        if content_type == "image/heic":
            import pillow_heif

            pillow_heif.register_heif_opener()
        return _pillow
    import pyvips  # noqa: F401

    return _pyvips


def memory_status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found


def child(method: str, path: Path, content_type: str) -> dict[str, Any]:
    data = path.read_bytes()
    run = _prepare(method, content_type)
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    rss_before = memory_status()["VmRSS"]
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    previews = run(data, content_type)
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    peak = memory_status()["VmHWM"]
    return {
        "wall_ms": wall * 1000,
        "cpu_ms": cpu * 1000,
        "rss_growth_mb": peak - rss_before,
        "rss_peak_mb": peak,
        "previews": previews,
    }


# --- parent ----------------------------------------------------------------------------------------------------


def measure(*, repetitions: int, log: Callable[[str], None]) -> dict[str, Any]:
    unavailable = generate_samples(CACHE_DIR, log)
    vips_missing = pyvips_unavailable()
    env = common.lambda_environment({"PYTHONPATH": str(common.PROJECT_DIR)})  # libvips picks its thread count
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {name: {m: [] for m in METHODS} for name in SAMPLES}
    errors: dict[str, dict[str, str]] = {}
    jobs = [
        (name, method)
        for name in SAMPLES
        for method in METHODS
        if unavailable[name] is None and not (method == "pyvips" and vips_missing)
    ]
    for index in common.interleaved([str(i) for i in range(len(jobs))], repetitions):
        name, method = jobs[int(index)]
        filename, content_type, _size, _description = SAMPLES[name]
        try:
            run = common.run_fresh(
                [
                    common.python(),
                    "-m",
                    "bench.previews",
                    "--method",
                    method,
                    "--file",
                    str(CACHE_DIR / filename),
                    "--type",
                    content_type,
                ],
                env=env,
                timeout=180,
            )
        except RuntimeError as e:
            errors.setdefault(name, {})[method] = str(e).strip().splitlines()[-1][:200]
            continue
        samples[name][method].append(common.last_json_line(run.stdout))
    log("  previews: done")
    results: dict[str, Any] = {"repetitions": repetitions, "images": {}, "pyvips_unavailable": vips_missing}
    for name, (filename, _type, size, description) in SAMPLES.items():
        entry: dict[str, Any] = {
            "description": description,
            "bytes": (CACHE_DIR / filename).stat().st_size if (CACHE_DIR / filename).exists() else None,
            "megapixels": size[0] * size[1] / 1e6,
            "unavailable": unavailable[name],
            "errors": errors.get(name, {}),
            "methods": {},
        }
        for method in METHODS:
            runs = samples[name][method]
            if not runs:
                continue
            entry["methods"][method] = {
                "wall_ms": common.median(r["wall_ms"] for r in runs),
                "cpu_ms": common.median(r["cpu_ms"] for r in runs),
                "rss_growth_mb": common.median(r["rss_growth_mb"] for r in runs),
                "rss_peak_mb": common.median(r["rss_peak_mb"] for r in runs),
                "previews": runs[0]["previews"],
            }
        results["images"][name] = entry
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one preview measurement (a child of python -m bench)")
    parser.add_argument("--method", choices=list(METHODS), required=True)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--type", required=True)
    args = parser.parse_args(argv)
    print(json.dumps(child(args.method, args.file, args.type)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
