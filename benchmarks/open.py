"""Measure open + first frame of JPEG-tiled pyramidal TIFFs of 4k, 20k and 80k pixels a side.

``python -m benchmarks open [--sides 4000 20000 80000] [--cache out/bench-cache] [--runs 5]``

Slides are built once into the cache folder and kept between runs. A 2048 x 2048 mosaic of
four real SegPC bone-marrow fields is repeated over the whole level 0. Level k repeats the
2^k block mean of that mosaic in the same way. Every 512 x 512 tile is stored as JPEG
(quality 90), with the reduced levels in SubIFDs. Identical tiles are encoded once, so even
the 80k slide is written in seconds, while every tile a reader decodes is real marrow
texture.

Three readers open each slide, each run in a fresh Python process so that the peak
resident memory (RSS) belongs to that reader alone:

- ``napari_alma``: the plugin's napari reader (``napari_get_reader(path)(path)``).
- ``lazy_baseline``: tifffile's Zarr store, opened with zarr and wrapped in dask.
- ``napari_builtin``: napari's built-in reader, which reads level 0 into memory. It is
  reported as not run where level 0 would need more memory than the machine has free.

"First frame" is the pixels a viewer needs to show the whole slide on a 1024-pixel
canvas: the first level with both sides at most 1024, computed. For the built-in reader,
whose data is one in-memory level, it is that level subsampled to the same size.
Each record gives the best and the median time of ``--runs`` processes and the largest
peak RSS above the process's RSS after its imports, then the ratios against the lazy
baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import REPO_ROOT, data_root, emit, machine_info

PACKAGES = ("numpy", "tifffile", "zarr", "dask", "imagecodecs", "napari")
READERS = ("napari_alma", "lazy_baseline", "napari_builtin")
TILE = 512
PERIOD = 2048  # side of the repeated real mosaic, in level-0 pixels
CANVAS = 1024  # side of the canvas that the first frame fills
SEGPC_FIELDS = ("1991", "1993", "1997", "2009")
# The built-in reader needs level 0 decoded plus about one copy while it is assembled.
EAGER_MEMORY_FACTOR = 2.0


def main(argv: list[str]) -> int:
    """Run the benchmark, or one measurement when called with ``--child``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks open")
    parser.add_argument("--sides", type=int, nargs="+", default=[4000, 20000, 80000],
                        help="slide sides in pixels")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "out" / "bench-cache",
                        help="folder where the generated slides are kept between runs")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per reader")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure_in_this_process(*args.child)))
        return 0
    machine = machine_info(PACKAGES)
    for side in args.sides:
        path = slide_path(args.cache, side)
        if not path.exists():
            write_slide(path, side, _real_mosaic(data_root()))
        emit({**_measure_side(path, side, args.runs), "machine": machine})
    return 0


# -- slide generation ----------------------------------------------------------------------
def slide_path(cache: Path, side: int) -> Path:
    """Return where the generated slide of ``side`` pixels is kept."""
    return cache / f"segpc-mosaic-{side}.tif"


def _real_mosaic(root: Path) -> np.ndarray:
    """(PERIOD, PERIOD, 3) uint8: the central 1024 x 1024 of four SegPC fields, 2 x 2."""
    from PIL import Image

    folder = root / "segpc2021_bm_plasma_cells" / "mini_test" / "images"
    crops = []
    for name in SEGPC_FIELDS:
        field = np.asarray(Image.open(folder / f"{name}.jpg"))
        top, left = (field.shape[0] - 1024) // 2, (field.shape[1] - 1024) // 2
        crops.append(field[top : top + 1024, left : left + 1024])
    top = np.concatenate(crops[:2], axis=1)
    bottom = np.concatenate(crops[2:], axis=1)
    return np.concatenate([top, bottom], axis=0)


def write_slide(path: Path, side: int, mosaic: np.ndarray) -> None:
    """Write a JPEG-tiled pyramidal TIFF (SubIFDs) of ``side`` pixels, via a temporary name."""
    import tifffile

    shapes = _level_shapes(side)
    options = {"dtype": "uint8", "tile": (TILE, TILE), "photometric": "rgb",
               "compression": "jpeg"}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    try:
        with tifffile.TiffWriter(partial, bigtiff=True) as writer:
            for level, shape in enumerate(shapes):
                extra = {"subifds": len(shapes) - 1} if level == 0 else {"subfiletype": 1}
                tiles = _encoded_tiles(_mosaic_level(mosaic, level), shape)
                writer.write(tiles, shape=(*shape, 3), **options, **extra)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(path)


def _level_shapes(side: int) -> list[tuple[int, int]]:
    shapes = [(side, side)]
    while max(shapes[-1]) > CANVAS:
        rows, cols = shapes[-1]
        shapes.append((-(-rows // 2), -(-cols // 2)))
    return shapes


def _mosaic_level(mosaic: np.ndarray, level: int) -> np.ndarray:
    factor = 2**level
    side = mosaic.shape[0] // factor
    blocks = mosaic.reshape(side, factor, side, factor, 3).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def _encoded_tiles(period: np.ndarray, shape: tuple[int, int]):
    """Yield the JPEG bytes of every tile of a level, row by row; repeats are encoded once."""
    import imagecodecs

    cache = {}
    size = period.shape[0]
    for row in range(0, shape[0], TILE):
        for col in range(0, shape[1], TILE):
            key = (row % size, col % size)
            if key not in cache:
                rows = (key[0] + np.arange(TILE)) % size
                cols = (key[1] + np.arange(TILE)) % size
                tile = np.ascontiguousarray(period[rows][:, cols])
                cache[key] = imagecodecs.jpeg_encode(tile, level=90)
            yield cache[key]


# -- measurement ---------------------------------------------------------------------------
def _measure_side(path: Path, side: int, runs: int) -> dict:
    record = {"benchmark": "open", "side_px": side, "file_bytes": path.stat().st_size}
    reasons = {reader: _not_run_reason(reader, side) for reader in READERS}
    results = {reader: [] for reader in READERS if reasons[reader] is None}
    # The readers take turns, so that load from other processes hits them alike.
    for _ in range(runs):
        for reader, measured in results.items():
            measured.append(_run_child(reader, path))
    for reader in READERS:
        record[reader] = ({"not_run": reasons[reader]} if reasons[reader]
                          else _summary(results[reader]))
    baseline = record["lazy_baseline"]
    for reader in ("napari_alma", "napari_builtin"):
        figures = record[reader]
        if "seconds" in figures:
            figures["time_ratio_to_lazy"] = figures["seconds"] / baseline["seconds"]
            figures["median_time_ratio_to_lazy"] = (figures["median_seconds"]
                                                    / baseline["median_seconds"])
            figures["memory_ratio_to_lazy"] = (figures["peak_rss_above_imports_mb"]
                                               / baseline["peak_rss_above_imports_mb"])
    return record


def _not_run_reason(reader: str, side: int) -> str | None:
    if reader != "napari_builtin":
        return None
    needed = side * side * 3 * EAGER_MEMORY_FACTOR
    available = _available_bytes()
    if needed < available:
        return None
    return (f"needs about {needed / 2**30:.1f} GiB to hold level 0 while reading it, "
            f"more than the {available / 2**30:.1f} GiB available")


def _available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _summary(results: list[dict]) -> dict:
    seconds = [result["seconds"] for result in results]
    return {
        "seconds": min(seconds),
        "median_seconds": float(np.median(seconds)),
        "peak_rss_above_imports_mb": max(result["peak_rss_above_imports_mb"]
                                         for result in results),
        "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
        "frame_shape": results[0]["frame_shape"],
        "runs": len(results),
    }


def _run_child(reader: str, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "benchmarks", "open", "--child", reader, str(path)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_in_this_process(reader: str, path: str) -> dict:
    # A running napari has these loaded already, so their import time is left out. The
    # first dask compute also imports dask.distributed (about 0.1-0.3 s here) to look for
    # a client, so one tiny compute runs before the clock starts.
    import dask.array
    import tifffile  # noqa: F401
    import zarr  # noqa: F401

    dask.array.zeros(1).compute()

    open_and_frame = _READER_FUNCTIONS[reader]()
    before = _memory_mb("VmRSS")
    start = time.perf_counter()
    frame = open_and_frame(path)
    seconds = time.perf_counter() - start
    peak = _memory_mb("VmHWM")
    return {"seconds": seconds, "peak_rss_mb": peak,
            "peak_rss_above_imports_mb": max(peak - before, 0.0),
            "frame_shape": list(frame.shape)}


def _memory_mb(field: str) -> float:
    """Return a /proc/self/status memory figure in MiB: VmRSS now, or VmHWM (peak RSS).

    NOTE: VmHWM, unlike ``getrusage`` maxrss, starts afresh at exec, so it does not
    include the parent process that forked this one.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line; the benchmark needs Linux.")


def _first_frame_level(levels: list):
    """Return the first level with both sides at most CANVAS, else the coarsest."""
    for level in levels:
        if max(level.shape[:2]) <= CANVAS:
            return level
    return levels[-1]


def _napari_alma():
    from napari_alma.slides.napari_reader import napari_get_reader

    def open_and_frame(path: str) -> np.ndarray:
        data, kwargs, _ = napari_get_reader(path)(path)[0]
        levels = data if kwargs["multiscale"] else [data]
        return np.asarray(_first_frame_level(levels))

    return open_and_frame


def _lazy_baseline():
    import dask.array as da
    import tifffile
    import zarr

    def open_and_frame(path: str) -> np.ndarray:
        store = tifffile.imread(path, aszarr=True)
        group = zarr.open_group(store, mode="r")
        levels = [da.from_zarr(group[str(index)]) for index in range(len(group))]
        return np.asarray(_first_frame_level(levels))

    return open_and_frame


def _napari_builtin():
    from napari_builtins.io import napari_get_reader

    def open_and_frame(path: str) -> np.ndarray:
        data = np.asarray(napari_get_reader(path)(path)[0][0])
        step = -(-max(data.shape[:2]) // CANVAS)
        return np.ascontiguousarray(data[::step, ::step])

    return open_and_frame


_READER_FUNCTIONS = {
    "napari_alma": _napari_alma,
    "lazy_baseline": _lazy_baseline,
    "napari_builtin": _napari_builtin,
}
