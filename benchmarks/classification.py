"""Measure the shipped default classifier on the held-out PBC test split.

``python -m benchmarks classification [--model DIR] [--tta]`` prints one JSON object: the
balanced accuracy, per-class F1 and recall, the confusion matrix (rows true, columns
predicted, in the model's class order) and the classification speed in cells/s on this
machine. The test crops are rebuilt from ``pbc_wbc_yolo`` with the build's own split
function (:func:`napari_alma.learning.pbc.held_out_records`: a stratified 20 % per class,
seed 0), so they are the cells the build never trained on. The record also gives the
balanced accuracy that the model's card states, to show that the two agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import data_root, emit, machine_info


def main(argv: list[str]) -> int:
    """Run the classification benchmark; see the module docstring for the figures."""
    from napari_alma.learning import pbc
    from napari_alma.learning.model import default_model_path, load_model
    from napari_alma.learning.train import classification_metrics, metrics_entry

    parser = argparse.ArgumentParser(prog="python -m benchmarks classification")
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--tta", action="store_true", help="average the 8 flips and rotations")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts")
    args = parser.parse_args(argv)

    model = load_model(args.model or default_model_path())
    records = pbc.read_pbc(data_root() / "pbc_wbc_yolo")
    held_out = pbc.held_out_records(records)
    started = time.perf_counter()
    crops = pbc.cell_crops(held_out, pbc.estimate_mpp(records))
    crop_seconds = time.perf_counter() - started
    probs, seconds = _timed_predict(model, crops, args.tta, args.repeats)

    index = {code: i for i, code in enumerate(model.classes)}
    true = np.array([index[pbc.PBC_TO_SCHEME[r["prefix"]]] for r in held_out])
    metrics = classification_metrics(true, probs.argmax(axis=1), len(model.classes))
    entry = metrics_entry(metrics, model.classes, "held-out PBC test split", len(held_out))
    emit({
        "benchmark": "classification",
        "model": model.version,
        "classes": model.classes,
        "tta": args.tta,
        "n_test": len(held_out),
        "balanced_accuracy": entry["balanced_accuracy"],
        "card_balanced_accuracy": model.card.get("metrics", {}).get("balanced_accuracy"),
        "per_class_f1": entry["per_class_f1"],
        "per_class_recall": entry["per_class_recall"],
        "confusion": entry["confusion"],
        "cells_per_s": round(len(held_out) / seconds, 1),
        "crop_cells_per_s": round(len(held_out) / crop_seconds, 1),
        "machine": machine_info(("numpy", "torch", "scikit-image")),
    })
    return 0


def _timed_predict(model, crops, tta: bool, repeats: int):
    """Classify ``crops``; return the probabilities and the best time of ``repeats`` passes."""
    model.predict(crops[:8], tta=tta)  # warm-up: thread pools and kernels
    best = float("inf")
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        probs = model.predict(crops, tta=tta)
        best = min(best, time.perf_counter() - started)
    return probs, best
