"""Measure nucleated-cell detection on the real annotated smear images.

``python -m benchmarks detection [--dataset pbc|bccd|segpc|all] [--no-per-image]`` prints one
JSON object per data set and µm/px mode:

- PBC (peripheral blood, one box around the central leukocyte or erythroblast per image):
  the development set of the detector. Per PBC class, the fraction of images whose box
  holds exactly one detection, none, or two or more (a double count), and the number of
  detections outside the box (mostly other cells in frame, which are not boxed). It runs
  with the µm/px the detector estimates from each image, as the product does, and with the
  PBC-wide estimate from the neutrophil boxes (:func:`napari_alma.learning.pbc.estimate_mpp`).

- BCCD (peripheral blood, VOC boxes): a detection matches a WBC box when its position lies
  inside the box, one-to-one. A second detection inside an already matched box is a double
  count. A detection inside no WBC box is a false positive, and the record also counts
  how many of those lie on an RBC or a platelet box. BCCD states no pixel size, so it runs with the
  estimated µm/px and with a reference of 7.5 µm over the median RBC box side.
- SegPC-2021 (marrow, union mask of plasma cells): recall of mask components (those above
  ``--min-component-um2``) holding at least one detection, detections per component, and
  detections outside the mask (other nucleated cells are not annotated there). It runs
  with the scale-bar µm/px (10 µm bar of about 242 px) and with the estimated one.
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from benchmarks._common import data_root, emit, machine_info

RED_CELL_DIAMETER_UM = 7.5
SEGPC_MPP = 10.0 / 242.0  # burned-in 10 µm scale bar, measured at about 242 px
SEGPC_MIN_COMPONENT_UM2 = 25.0  # a small cell, 6 µm across


def main(argv: list[str]) -> int:
    """Run the detection benchmark; see the module docstring for the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks detection")
    parser.add_argument("--dataset", choices=["pbc", "bccd", "segpc", "all"], default="all")
    parser.add_argument("--no-per-image", action="store_true", help="omit per-image rows")
    parser.add_argument(
        "--min-component-um2",
        type=float,
        default=SEGPC_MIN_COMPONENT_UM2,
        help="SegPC mask components smaller than this area (µm²) are ignored",
    )
    args = parser.parse_args(argv)
    root = data_root()
    machine = machine_info()
    per_image = not args.no_per_image

    if args.dataset in ("pbc", "all"):
        for record in _pbc_records(root, per_image):
            record["machine"] = machine
            emit(record)
    if args.dataset in ("bccd", "all"):
        images = _bccd_images(root)
        reference = _bccd_reference_mpp(images)
        for mode, mpp in (("estimated", None), ("reference_rbc_boxes", reference)):
            record = _run_bccd(images, mpp, per_image)
            record.update(mode=mode, reference_mpp=reference, machine=machine)
            emit(record)
    if args.dataset in ("segpc", "all"):
        images = _segpc_images(root)
        for mode, mpp in (("scale_bar", SEGPC_MPP), ("estimated", None)):
            record = _run_segpc(images, mpp, args.min_component_um2, per_image)
            record.update(mode=mode, scale_bar_mpp=SEGPC_MPP, machine=machine)
            emit(record)
    return 0


def _timed_detect(image: np.ndarray, mpp: float | None):
    from napari_alma.learning.detection import detect_cells

    start = time.perf_counter()
    detections = detect_cells(image, mpp=mpp)
    return detections, time.perf_counter() - start


def _read_rgb(path: Path) -> np.ndarray:
    from skimage.io import imread

    return imread(path)[..., :3]


def _timing(seconds: list[float], megapixels: list[float]) -> dict:
    per_mp = np.asarray(seconds) / np.asarray(megapixels)
    return {
        "seconds_total": round(float(np.sum(seconds)), 3),
        "seconds_per_megapixel_median": round(float(np.median(per_mp)), 4),
        "seconds_per_image_max": round(float(np.max(seconds)), 3),
    }


def _mpp_summary(values: list[float], reference: float | None) -> dict:
    values = np.asarray([v for v in values if np.isfinite(v)])
    summary = {"mpp_used_median": round(float(np.median(values)), 5) if values.size else None}
    if reference and values.size:
        error = values / reference - 1.0
        summary["mpp_relative_error_median"] = round(float(np.median(error)), 3)
        summary["mpp_relative_error_max_abs"] = round(float(np.max(np.abs(error))), 3)
    return summary


# ---------------------------------------------------------------- PBC


def _pbc_records(root: Path, per_image: bool) -> list[dict]:
    from napari_alma.learning.pbc import estimate_mpp, read_pbc

    cells = read_pbc(root / "pbc_wbc_yolo")
    reference = estimate_mpp(cells)["mpp"]
    records = []
    for mode, mpp in (("estimated", None), ("reference_neutrophil_boxes", reference)):
        record = _run_pbc(cells, mpp, per_image)
        record.update(mode=mode, reference_mpp=reference)
        records.append(record)
    return records


def _pbc_box(cell: dict) -> tuple[float, float, float, float]:
    half_rows, half_cols = cell["box_rows"] / 2, cell["box_cols"] / 2
    return (cell["row"] - half_rows, cell["col"] - half_cols,
            cell["row"] + half_rows, cell["col"] + half_cols)


def _run_pbc(cells: list[dict], mpp: float | None, per_image: bool) -> dict:
    rows, seconds, megapixels, mpps = [], [], [], []
    for cell in cells:
        image = _read_rgb(cell["image"])
        detections, elapsed = _timed_detect(image, mpp)
        box = _pbc_box(cell)
        inside = int(sum(_inside(p, box) for p in detections.positions))
        rows.append({"image": cell["cell_id"], "class": cell["prefix"], "inside": inside,
                     "outside": len(detections) - inside})
        seconds.append(elapsed)
        megapixels.append(image.shape[0] * image.shape[1] / 1e6)
        mpps.append(detections.mpp)
    record = {
        "benchmark": "detection",
        "dataset": "pbc",
        "images": len(rows),
        "all_classes": _pbc_summary(rows),
        "per_class": {
            name: _pbc_summary([r for r in rows if r["class"] == name])
            for name in sorted({r["class"] for r in rows})
        },
        **_mpp_summary(mpps, None),
        **_timing(seconds, megapixels),
    }
    if per_image:
        record["per_image"] = rows
    return record


def _pbc_summary(rows: list[dict]) -> dict:
    inside = np.asarray([r["inside"] for r in rows])
    return {
        "images": len(rows),
        "one": round(float(np.mean(inside == 1)), 3),
        "none": round(float(np.mean(inside == 0)), 3),
        "double": round(float(np.mean(inside >= 2)), 3),
        "outside_per_image": round(float(np.mean([r["outside"] for r in rows])), 3),
    }


# ---------------------------------------------------------------- BCCD


def _bccd_images(root: Path) -> list[tuple[Path, list[tuple[str, tuple[float, ...]]]]]:
    folder = root / "bccd" / "BCCD"
    images = []
    for xml_path in sorted((folder / "Annotations").glob("*.xml")):
        boxes = []
        for obj in ET.parse(xml_path).findall("object"):
            box = obj.find("bndbox")
            # VOC boxes are 1-based, inclusive: convert to 0-based (row0, col0, row1, col1).
            x0, y0, x1, y1 = (float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((obj.find("name").text, (y0 - 1, x0 - 1, y1 - 1, x1 - 1)))
        images.append((folder / "JPEGImages" / f"{xml_path.stem}.jpg", boxes))
    return images


def _bccd_reference_mpp(images) -> float:
    sides = [
        np.sqrt((b[2] - b[0]) * (b[3] - b[1]))
        for _, boxes in images
        for name, b in boxes
        if name == "RBC"
    ]
    return RED_CELL_DIAMETER_UM / float(np.median(sides))


def _inside(position: np.ndarray, box: tuple[float, ...]) -> bool:
    row, col = position
    return box[0] <= row <= box[2] and box[1] <= col <= box[3]


def _match_bccd(positions: np.ndarray, boxes) -> dict:
    wbc = [b for name, b in boxes if name == "WBC"]
    pairs = []
    for d, position in enumerate(positions):
        for w, box in enumerate(wbc):
            if _inside(position, box):
                centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                pairs.append((float(np.linalg.norm(position - centre)), d, w))
    matched_det, matched_box = set(), set()
    for _, d, w in sorted(pairs):
        if d not in matched_det and w not in matched_box:
            matched_det.add(d)
            matched_box.add(w)
    in_wbc = {d for _, d, _ in pairs}
    outside = [d for d in range(len(positions)) if d not in in_wbc]
    return {
        "wbc": len(wbc),
        "hit": len(matched_box),
        "detections": len(positions),
        "double": len(in_wbc - matched_det),
        "fp": len(outside),
        "fp_on_rbc": _count_on(positions, outside, boxes, "RBC"),
        "fp_on_platelets": _count_on(positions, outside, boxes, "Platelets"),
    }


def _count_on(positions, indices, boxes, name) -> int:
    selected = [b for n, b in boxes if n == name]
    return sum(any(_inside(positions[i], b) for b in selected) for i in indices)


def _run_bccd(images, mpp: float | None, per_image: bool) -> dict:
    rows, seconds, megapixels, mpps = [], [], [], []
    for path, boxes in images:
        image = _read_rgb(path)
        detections, elapsed = _timed_detect(image, mpp)
        row = {"image": path.stem, **_match_bccd(detections.positions, boxes)}
        rows.append(row)
        seconds.append(elapsed)
        megapixels.append(image.shape[0] * image.shape[1] / 1e6)
        mpps.append(detections.mpp)
    totals = {k: sum(r[k] for r in rows) for k in rows[0] if k != "image"}
    record = {
        "benchmark": "detection",
        "dataset": "bccd",
        "images": len(rows),
        "wbc_recall": round(totals["hit"] / totals["wbc"], 4),
        "precision": round(totals["hit"] / max(1, totals["detections"]), 4),
        "images_all_wbc_hit_no_fp": sum(
            r["hit"] == r["wbc"] and r["fp"] == 0 and r["double"] == 0 for r in rows
        ),
        **totals,
        **_mpp_summary(mpps, None),
        **_timing(seconds, megapixels),
    }
    if per_image:
        record["per_image"] = rows
    return record


# ---------------------------------------------------------------- SegPC


def _segpc_images(root: Path) -> list[tuple[Path, Path]]:
    folder = root / "segpc2021_bm_plasma_cells" / "mini_test"
    return [(p, folder / "masks" / p.name) for p in sorted((folder / "images").glob("*.jpg"))]


def _score_segpc(positions: np.ndarray, mask: np.ndarray, min_area_px: float) -> dict:
    from scipy import ndimage as ndi

    labels, count = ndi.label(mask)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    counted = np.flatnonzero(areas >= min_area_px)
    counted = counted[counted > 0]
    index = np.clip(np.rint(positions).astype(int), 0, np.array(mask.shape) - 1)
    hit_labels = labels[index[:, 0], index[:, 1]] if len(positions) else np.zeros(0, int)
    per_component = np.bincount(hit_labels, minlength=count + 1)[counted]
    return {
        "components": int(counted.size),
        "components_hit": int((per_component > 0).sum()),
        "detections": int(len(positions)),
        "detections_in_components": int(per_component.sum()),
        "detections_outside_mask": int((hit_labels == 0).sum()),
        "detections_per_component_max": int(per_component.max()) if counted.size else 0,
    }


def _run_segpc(images, mpp: float | None, min_component_um2: float, per_image: bool) -> dict:
    rows, seconds, megapixels, mpps = [], [], [], []
    for image_path, mask_path in images:
        image = _read_rgb(image_path)
        mask = _read_mask(mask_path)
        detections, elapsed = _timed_detect(image, mpp)
        min_area_px = min_component_um2 / SEGPC_MPP**2
        scores = _score_segpc(detections.positions, mask, min_area_px)
        rows.append({"image": image_path.stem, **scores})
        seconds.append(elapsed)
        megapixels.append(image.shape[0] * image.shape[1] / 1e6)
        mpps.append(detections.mpp)
    totals = {k: sum(r[k] for r in rows) for k in rows[0] if k not in ("image",)}
    totals["detections_per_component_max"] = max(r["detections_per_component_max"] for r in rows)
    record = {
        "benchmark": "detection",
        "dataset": "segpc2021",
        "images": len(rows),
        "plasma_cell_component_recall": round(totals["components_hit"] / totals["components"], 4),
        "detections_per_component_mean": round(
            totals["detections_in_components"] / totals["components"], 3
        ),
        **totals,
        **_mpp_summary(mpps, SEGPC_MPP),
        **_timing(seconds, megapixels),
    }
    if per_image:
        record["per_image"] = rows
    return record


def _read_mask(path: Path) -> np.ndarray:
    from skimage.io import imread

    mask = imread(path)
    if mask.ndim == 3:
        mask = mask[..., 0]
    return mask >= 128
