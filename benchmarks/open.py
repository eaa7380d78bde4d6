"""Measure opening, region reads and fingerprints of slides built from real SegPC fields.

``python -m benchmarks open [--side PX] [--keep DIR]`` writes, in a temporary folder (or in
DIR, kept afterwards), a JPEG-compressed tiled pyramidal TIFF (SubIFDs, factor 2) and a
single-level stripped TIFF, both ``--side`` pixels square and tiled from a SegPC marrow
field, then prints one JSON object per measurement:

- ``open``: ``open_slide`` against reading level 0 whole with ``tifffile.imread`` (the
  eager baseline), and the bytes ``open_slide`` reads from the file.
- ``read_region``: a 1024 x 1024 level-0 region and the whole coarsest level.
- ``overview``: computing the coarsest overview level of the single-level TIFF.
- ``fingerprint``: ``fingerprint`` against SHA-256 over the whole file.
- ``jpeg``: ``open_slide`` plus the first region read of a SegPC field against a Pillow
  decode.

The eager baselines that need more memory than the machine has are reported as not run.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import data_root, emit, machine_info

REGION_SIDE = 1024
PACKAGES = ("numpy", "tifffile", "zarr", "dask", "Pillow", "imagecodecs")


def main(argv: list[str]) -> int:
    """Run the slide-opening benchmark. The module docstring lists the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks open")
    parser.add_argument("--side", type=int, default=16384, help="slide side in pixels")
    parser.add_argument("--keep", type=Path, help="write the slides here and keep them")
    args = parser.parse_args(argv)
    machine = machine_info(PACKAGES)
    field = _segpc_field(data_root())
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        pyramid, single = _write_slides(folder, field, args.side)
        for record in _measure_all(pyramid, single, args.side):
            record.update(side_px=args.side, machine=machine)
            emit(record)
    for record in [_measure_jpeg(data_root())]:
        record.update(machine=machine)
        emit(record)
    return 0


def _segpc_field(root: Path) -> np.ndarray:
    from PIL import Image

    path = root / "segpc2021_bm_plasma_cells" / "mini_test" / "images" / "1991.jpg"
    return np.asarray(Image.open(path))


def _tiled(field: np.ndarray, side: int) -> np.ndarray:
    repeats = (-(-side // field.shape[0]), -(-side // field.shape[1]), 1)
    return np.tile(field, repeats)[:side, :side]


def _write_slides(folder: Path, field: np.ndarray, side: int) -> tuple[Path, Path]:
    import tifffile

    image = _tiled(field, side)
    pyramid, single = folder / "pyramid.tif", folder / "single.tif"
    levels = [image[:: 2**k, :: 2**k] for k in range(_level_count(side))]
    options = {"tile": (512, 512), "photometric": "rgb", "compression": "jpeg"}
    with tifffile.TiffWriter(pyramid, bigtiff=True) as writer:
        writer.write(levels[0], subifds=len(levels) - 1, **options)
        for level in levels[1:]:
            writer.write(level, subfiletype=1, **options)
    tifffile.imwrite(single, image, photometric="rgb", bigtiff=True, rowsperstrip=64)
    return pyramid, single


def _level_count(side: int) -> int:
    count = 1
    while side // 2 ** (count - 1) > 1024:
        count += 1
    return count


def _seconds(function, repeat: int = 5) -> float:
    """Return the best wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _measure_all(pyramid: Path, single: Path, side: int) -> list[dict]:
    return [
        _measure_open(pyramid, side),
        _measure_regions(pyramid),
        _measure_overview(single),
        _measure_fingerprint(pyramid),
    ]


def _measure_open(path: Path, side: int) -> dict:
    import tifffile

    from napari_alma.slides import open_slide

    opened = _seconds(lambda: open_slide(path).close())
    record = {"benchmark": "open", "file_bytes": path.stat().st_size, "open_s": opened}
    record["bytes_read_at_open"] = _bytes_read_at_open(path)
    if _fits_in_memory(side * side * 3 * 2):
        eager = _seconds(lambda: tifffile.imread(path), repeat=1)
        record.update(eager_read_s=eager, ratio_open_to_eager=opened / eager)
    else:
        record["eager_read_s"] = "not run: level 0 would need more memory than is free"
    return record


def _bytes_read_at_open(path: Path) -> int:
    import tifffile

    from napari_alma.slides import open_slide

    original = tifffile.FileHandle.read
    counted = []

    def counting_read(handle, size=-1):
        data = original(handle, size)
        counted.append(len(data))
        return data

    tifffile.FileHandle.read = counting_read
    try:
        open_slide(path).close()
    finally:
        tifffile.FileHandle.read = original
    return sum(counted)


def _measure_regions(path: Path) -> dict:
    from napari_alma.slides import open_slide

    with open_slide(path) as slide:
        centre = slide.shape[0] // 2
        stop = centre + REGION_SIDE
        region = _seconds(lambda: slide.read_region(centre, centre, stop, stop))
        coarsest = len(slide.levels) - 1
        overview = _seconds(lambda: np.asarray(slide.levels[coarsest]))
        shape = list(slide.levels[coarsest].shape)
    return {
        "benchmark": "read_region",
        "region_px": REGION_SIDE,
        "region_s": region,
        "coarsest_level_shape": shape,
        "coarsest_level_s": overview,
    }


def _measure_overview(path: Path) -> dict:
    from napari_alma.slides import open_slide

    with open_slide(path) as slide:
        coarsest = slide.levels[-1]
        seconds = _seconds(lambda: np.asarray(coarsest), repeat=1)
        return {
            "benchmark": "overview",
            "stored_levels": 1,
            "levels": len(slide.levels),
            "coarsest_level_shape": list(coarsest.shape),
            "coarsest_level_s": seconds,
        }


def _measure_fingerprint(path: Path) -> dict:
    from napari_alma.slides import fingerprint

    quick = _seconds(lambda: fingerprint(path))
    full = _seconds(lambda: _sha256_whole(path), repeat=1)
    return {
        "benchmark": "fingerprint",
        "file_bytes": path.stat().st_size,
        "fingerprint_s": quick,
        "sha256_whole_file_s": full,
        "ratio_fingerprint_to_whole": quick / full,
    }


def _sha256_whole(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def _measure_jpeg(root: Path) -> dict:
    from PIL import Image

    from napari_alma.slides import open_slide

    path = root / "segpc2021_bm_plasma_cells" / "mini_test" / "images" / "1991.jpg"
    opened = _seconds(lambda: open_slide(path))
    # Alternate the two runs so that load from other processes hits both alike.
    first_region, pillow = [], []
    for _ in range(7):
        first_region.append(_seconds(lambda: open_slide(path).read_region(0, 0, 512, 512), 1))
        pillow.append(_seconds(lambda: np.asarray(Image.open(path)), 1))
    first_region, pillow = min(first_region), min(pillow)
    return {
        "benchmark": "jpeg",
        "file": path.name,
        "open_s": opened,
        "open_and_first_region_s": first_region,
        "pillow_decode_s": pillow,
        "ratio_first_region_to_pillow": first_region / pillow,
    }


def _fits_in_memory(nbytes: int) -> bool:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return nbytes < int(line.split()[1]) * 1024
    except OSError:
        pass
    return False
