"""Measure slide-scale prediction against only decoding the same tiles.

``python -m benchmarks inference [--side PX] [--region PX] [--device D] [--bald T]``

Builds once, under ``out/benchmarks/``, a JPEG-compressed tiled pyramidal TIFF ``--side``
pixels square, a mosaic of the eight SegPC marrow fields (2040 x 1536 px each, about
0.041 µm/px) repeated over the square. Then, on a ``--region`` pixels square at its
top-left corner, it times:

- ``decode``: reading every tile that prediction reads (the 2048 px tiles with their
  30 µm overlap), with nothing else: the floor that any prediction pays;
- ``predict``: ``predict_slide`` on that region into a new project (detection,
  classification and storage), on ``--device``.

It prints one JSON object with cells/s, pixels/s and the ratio predict / decode. When
``--region`` is smaller than ``--side``, the time for the whole square is also given,
extrapolated by area and marked as an estimate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import REPO_ROOT, data_root, emit, machine_info

SEGPC_MPP = 0.041
PACKAGES = ("numpy", "torch", "tifffile", "imagecodecs", "scikit-image", "dask")


def main(argv: list[str]) -> int:
    """Run the inference benchmark; the module docstring lists the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks inference")
    parser.add_argument("--side", type=int, default=20000, help="slide side in pixels")
    parser.add_argument("--region", type=int, default=None,
                        help="measured region side in pixels (default: the whole slide)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps")
    parser.add_argument("--bald", type=int, default=0, help="Monte-Carlo passes for BALD")
    args = parser.parse_args(argv)
    region_side = min(args.region or args.side, args.side)
    slide = build_mosaic(args.side)
    region = (0, 0, region_side, region_side)
    decode = time_decode(slide, region)
    predicted = time_predict(slide, region, args.device, args.bald)
    emit(_record(args, region_side, decode, predicted))
    return 0


def build_mosaic(side: int) -> Path:
    """Return the cached mosaic pyramid of ``side`` pixels, writing it when missing."""
    import tifffile
    from PIL import Image

    path = REPO_ROOT / "out" / "benchmarks" / f"segpc_mosaic_{side}.tif"
    if path.is_file():
        return path
    folder = data_root() / "segpc2021_bm_plasma_cells" / "mini_test" / "images"
    fields = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.jpg"))]
    block = np.concatenate([np.concatenate(fields[i : i + 4], axis=1) for i in (0, 4)], axis=0)
    repeats = (-(-side // block.shape[0]), -(-side // block.shape[1]), 1)
    image = np.tile(block, repeats)[:side, :side]
    levels = [image]
    while max(levels[-1].shape[:2]) > 1024:
        levels.append(levels[-1][::2, ::2])
    options = {"tile": (512, 512), "photometric": "rgb", "compression": "jpeg"}
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".partial.tif")
    with tifffile.TiffWriter(temp, bigtiff=True) as writer:
        writer.write(levels[0], subifds=len(levels) - 1, **options)
        for level in levels[1:]:
            writer.write(level, subfiletype=1, **options)
    temp.rename(path)
    return path


def time_decode(path: Path, region) -> dict:
    """Read every padded tile that prediction reads in ``region``; return the seconds."""
    from napari_alma.learning.model import default_model_path, read_card
    from napari_alma.learning.predict import _tiles, tile_overlap_px
    from napari_alma.slides.reader import open_slide

    slide = open_slide(path)
    overlap = tile_overlap_px(SEGPC_MPP, read_card(default_model_path())["input_um"])
    start = time.perf_counter()
    pixels = 0
    for _, padded in _tiles(region, overlap, slide.shape):
        pixels += slide.read_region(*padded).size // 3
    return {"seconds": time.perf_counter() - start, "pixels_read": int(pixels)}


def time_predict(path: Path, region, device: str, bald_passes: int) -> dict:
    """Predict ``region`` into a new project; return the seconds and the cell count."""
    from napari_alma.learning.predict import predict_slide
    from napari_alma.slides.reader import fingerprint, open_slide
    from napari_alma.store.project import Project

    with tempfile.TemporaryDirectory() as folder, Project(Path(folder) / "p") as project:
        slide = open_slide(path)
        project.register_slide(path, fingerprint(path), slide.shape, SEGPC_MPP, "user")
        start = time.perf_counter()
        result = predict_slide(project, path, region=region, device=device,
                               bald_passes=bald_passes)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "cells": len(result["new"]),
            "model_version": result["model_version"]}


def _record(args, region_side: int, decode: dict, predicted: dict) -> dict:
    pixels = region_side**2
    record = {
        "benchmark": "inference",
        "slide": f"SegPC mosaic, {args.side} px square, JPEG tiles 512 px, {SEGPC_MPP} µm/px",
        "region_px": region_side,
        "device": args.device,
        "bald_passes": args.bald,
        "cells": predicted["cells"],
        "predict_s": round(predicted["seconds"], 2),
        "decode_s": round(decode["seconds"], 2),
        "ratio_predict_to_decode": round(predicted["seconds"] / decode["seconds"], 2),
        "cells_per_s": round(predicted["cells"] / predicted["seconds"], 1),
        "pixels_per_s": round(pixels / predicted["seconds"]),
        "model_version": predicted["model_version"],
        "machine": machine_info(PACKAGES),
    }
    if region_side < args.side:
        scale = args.side**2 / pixels
        record["estimate_whole_side"] = {
            "predict_s": round(predicted["seconds"] * scale, 1),
            "decode_s": round(decode["seconds"] * scale, 1),
            "basis": f"extrapolated by area from the {region_side} px region (an estimate)",
        }
    return record
