"""Rebuild the bundled sample images from the real annotated data sets.

Run ``python -m napari_alma.samples.build DATA_ROOT`` where DATA_ROOT contains ``pbc_wbc_yolo``
(CC BY 4.0) and ``bccd`` (MIT). Only those two licences allow shipping the pixels.

- ``pbc_mosaic.tif``: 20 real PBC cell images (two per class of the default model),
  taken from the default model's held-out test split, laid out as a 4 x 5 mosaic. It is a
  mosaic of separate images, not one smear field. Saved as a tiled JPEG TIFF whose
  resolution tags carry the pixel size estimated for PBC.
- ``bccd_field.jpg``: one unchanged BCCD peripheral-blood smear field.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parent
# 10 classes x 2 cells = 20 images, laid out 4 rows by 5 columns.
MOSAIC_COLS, PER_CLASS = 5, 2
BCCD_FIELD = "BloodImage_00000.jpg"


def build_pbc_mosaic(pbc_dir: Path, out_path: Path) -> list[str]:
    """Write the PBC mosaic; return its image names, row by row."""
    import tifffile
    from skimage import io

    from napari_alma.learning.pbc import (
        PBC_TO_SCHEME,
        SEED,
        TEST_FRACTION,
        estimate_mpp,
        read_pbc,
        stratified_test_split,
    )

    records = read_pbc(pbc_dir)
    mpp = estimate_mpp(records)["mpp"]
    kept = [r for r in records if r["prefix"] in PBC_TO_SCHEME]
    split = stratified_test_split(np.array([PBC_TO_SCHEME[r["prefix"]] for r in kept]),
                                  TEST_FRACTION, SEED)
    test = [r for r, s in zip(kept, split) if s == "test"]
    chosen = [r for prefix in sorted(PBC_TO_SCHEME)
              for r in [t for t in test if t["prefix"] == prefix][:PER_CLASS]]
    np.random.default_rng(SEED).shuffle(chosen)
    images = [io.imread(r["image"])[..., :3] for r in chosen]
    height = min(image.shape[0] for image in images)
    width = min(image.shape[1] for image in images)
    rows = [np.concatenate([image[:height, :width] for image in images[i:i + MOSAIC_COLS]],
                           axis=1) for i in range(0, len(images), MOSAIC_COLS)]
    mosaic = np.concatenate(rows, axis=0)
    pixels_per_cm = 1e4 / mpp
    tifffile.imwrite(out_path, mosaic, photometric="rgb", tile=(256, 256), compression="jpeg",
                     compressionargs={"level": 90}, resolution=(pixels_per_cm, pixels_per_cm),
                     resolutionunit="CENTIMETER")
    return [r["image"].name for r in chosen]


def main(argv: list[str] | None = None) -> int:
    """Rebuild both samples from ``DATA_ROOT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", type=Path)
    args = parser.parse_args(argv)
    names = build_pbc_mosaic(args.data_root / "pbc_wbc_yolo", SAMPLES / "pbc_mosaic.tif")
    shutil.copyfile(args.data_root / "bccd" / "BCCD" / "JPEGImages" / BCCD_FIELD,
                    SAMPLES / "bccd_field.jpg")
    print("PBC mosaic, row by row:", ", ".join(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
