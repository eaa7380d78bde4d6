"""Measure how many labels each query strategy needs on the PBC cells.

``python -m benchmarks active_learning [--features split|shipped|random] [--epochs E]
[--seeds N] [--batch B] [--initial K] [--max-labels M]``

Protocol (fixed before any run; nothing here is tuned on the test cells):

1. Cells: the 1000 mapped PBC cells. Test: the 200 held-out cells of the build script's
   stratified test split (``napari_alma.learning.pbc``), which no backbone trains on.
   Pool: the other 800 cells, or half of them (below).
2. Features, ``--features split`` (the default, leak-free): the 800 pool cells are split
   into halves A and B of 400 cells, stratified by class and seeded (seed 0). Each PBC
   image is its own slide, so this is a split by slide. ``train_model`` trains a backbone
   of the shipped architecture and recipe (seed 0, no validation split) on half A only,
   for ``--epochs`` epochs (default 40, the shipped model's count, so half its crops).
   The learner's pool is then half B. The second fold is the reverse: a backbone on B,
   pool A. No backbone has seen a label of its pool or of the test cells. Each fold
   reports its own figures, and the summary pools the runs of both folds. Trained
   backbones and their features are cached under ``out/benchmarks``.
   ``--features shipped`` (leaky, for comparison): the shipped model, trained on all 800
   pool cells, with all 800 as the pool, so its features encode the pool's labels.
   ``--features random``: seeded random weights of the same architecture and a pool of
   800; leak-free but weak.
   In every mode the features are the 128 pooled features that feed the network's head,
   from crops of 20 µm.
3. Learner: multinomial logistic regression (L2 weight 1e-2, L-BFGS) on the raw features.
   BALD applies the shipped model's dropout (p = 0.3) to the features in 10 Monte-Carlo
   passes.
4. Each seed starts from ``--initial`` random labels per class. Each round fits the
   learner, scores the test cells (balanced accuracy), and queries ``--batch`` more pool
   cells by the strategy: entropy, margin, least confidence, BALD or random.
5. Target: 95 % of the balanced accuracy of the same learner fitted on all the pool's
   labels. A strategy's cost is its number of labels at the first round on target. The
   median is over the runs that reached the target, and the ratio divides it by random's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks._common import REPO_ROOT, data_root, emit, machine_info

STRATEGIES = ("random", "entropy", "margin", "least_confidence", "bald")
TARGET_SHARE = 0.95
L2 = 1e-2
MC_PASSES = 10
CACHE_FOLDER = REPO_ROOT / "out" / "benchmarks"
HALVES = ("A", "B")
HALF_SEED = 0
SPLIT_EPOCHS = 40


def main(argv: list[str]) -> int:
    """Run the active-learning benchmark; the module docstring states the protocol."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks active_learning")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--batch", type=int, default=10, help="labels queried per round")
    parser.add_argument("--initial", type=int, default=2, help="first labels per class")
    parser.add_argument("--max-labels", type=int, default=400, help="stop at this many")
    parser.add_argument("--features", choices=("split", "shipped", "random"), default="split",
                        help="backbone: trained on one half of the pool with the other half "
                        "as the AL pool (leak-free), the shipped model (trained on the whole "
                        "pool: leaky), or its architecture with seeded random weights")
    parser.add_argument("--epochs", type=int, default=SPLIT_EPOCHS,
                        help=f"training epochs of each half's backbone (default {SPLIT_EPOCHS})")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    folds = load_folds(args.features, args.epochs)
    dropout = _dropout_rate()
    _use_one_thread()
    results = []
    for data in folds:
        data["dropout"] = dropout
        full = fit_and_score(data, np.arange(len(data["pool_y"])))
        target = TARGET_SHARE * full
        runs = {name: [] for name in STRATEGIES}
        for seed in range(args.seeds):
            for name in STRATEGIES:
                runs[name].append(run_strategy(data, name, seed, args, target))
        results.append((data, full, target, runs))
    emit(_record(results, args, time.perf_counter() - started))
    return 0


def _use_one_thread() -> None:
    """Run torch on one thread for the learner's fits, which are tiny (at most 800 x 128).

    With two threads on a 2-core machine shared with other jobs, one L-BFGS fit took
    about 20 times as long.
    """
    import torch

    torch.set_num_threads(1)


def load_folds(features: str, epochs: int = SPLIT_EPOCHS) -> list[dict]:
    """Return one data set per backbone: two crossed halves for "split", else one."""
    if features != "split":
        return [{**load_features(features), "fold": f"{features}: all 800 pool cells"}]
    return [split_fold(half, epochs) for half in HALVES]


def pool_halves(pool_labels: np.ndarray, seed: int = HALF_SEED) -> np.ndarray:
    """Split the pool into halves "A" and "B", stratified by class, seeded.

    Each PBC image is its own slide, so a split by cell is a split by slide. The halves are
    the ``stratified_test_split`` of the build script at a fraction of one half: "B" is
    what it draws, "A" the rest.
    """
    from napari_alma.learning import pbc

    drawn = pbc.stratified_test_split(np.asarray(pool_labels), 0.5, seed)
    return np.where(drawn == "test", "B", "A")


def split_fold(half: str, epochs: int) -> dict:
    """Train (or reuse) a backbone on one half of the pool; the other half is the AL pool.

    The features of all 1000 cells come from a network of the shipped architecture and
    recipe trained by ``train_model`` on the ``half`` cells only. The pool is the other
    half; the test cells are the same 200 held-out cells.
    """
    cache = CACHE_FOLDER / f"pbc_features_split_{half}_e{epochs}.npz"
    if not cache.is_file():
        from napari_alma.learning.model import load_model

        export = _pbc_export()
        model = load_model(_train_half(export, half, epochs))
        _, table = _read_cells(export)
        crops = _load_crops(export, table)
        features = model.embed(crops, device="cpu")
        labels = table["class"].map(model.classes.index).to_numpy()
        halves = _halves_of(table)
        data = {"x": features, "y": labels, "side": halves,
                "classes": np.array(model.classes), "model_version": np.array(model.version)}
        _save_npz(cache, data)
    cached = np.load(cache, allow_pickle=False)
    side, x, y = cached["side"], cached["x"], cached["y"]
    other = "B" if half == "A" else "A"
    return {"pool_x": x[side == other], "pool_y": y[side == other],
            "test_x": x[side == "test"], "test_y": y[side == "test"],
            "classes": cached["classes"], "model_version": cached["model_version"],
            "fold": f"backbone on half {half}, pool = half {other}"}


def _pbc_export() -> Path:
    """Build the PBC active-learning export once (the build script's own export)."""
    from napari_alma.learning import pbc

    folder = CACHE_FOLDER / "pbc_split_export"
    if not (folder / "cells.csv").is_file():
        records = pbc.read_pbc(data_root() / "pbc_wbc_yolo")
        pbc.build_export(records, folder, pbc.estimate_mpp(records))
    return folder


def _read_cells(export: Path):
    from napari_alma.learning.al_format import read_al_export

    return read_al_export(export)


def _load_crops(export: Path, table) -> np.ndarray:
    from napari_alma.learning.al_format import load_crops

    return load_crops(export, table)


def _halves_of(table) -> np.ndarray:
    """Return "A", "B" or "test" for each row of the export's cell table."""
    side = np.full(len(table), "test", dtype=object)
    is_pool = (table["split"] == "train").to_numpy()
    side[is_pool] = pool_halves(table["class"].to_numpy()[is_pool])
    return side.astype(str)


def _train_half(export: Path, half: str, epochs: int) -> Path:
    """Train the shipped recipe on one half of the pool; return the cached model folder."""
    import shutil

    from napari_alma.learning.train import train_model

    model_dir = CACHE_FOLDER / f"pbc_split_{half}_e{epochs}"
    if (model_dir / "card.json").is_file():
        return model_dir
    half_export = CACHE_FOLDER / f"pbc_split_export_{half}"
    if half_export.exists():
        shutil.rmtree(half_export)
    shutil.copytree(export, half_export)
    _, table = _read_cells(half_export)
    # Every cell outside the half is marked test, which train_model never trains on.
    table["split"] = np.where(_halves_of(table) == half, "train", "test")
    temp = half_export / "cells.csv.tmp"
    table.to_csv(temp, index=False)
    temp.replace(half_export / "cells.csv")
    train_model(half_export, model_dir, device="cpu", epochs=epochs, seed=HALF_SEED,
                command=f"python -m benchmarks active_learning --features split "
                        f"--epochs {epochs} (half {half})",
                version=f"pbc-half-{half}-e{epochs}")
    return model_dir


def _save_npz(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.stem + ".tmp.npz")
    np.savez(temp, **data)
    temp.replace(path)


def load_features(backbone: str = "shipped") -> dict:
    """Return pool and test features and labels, embedding the PBC cells once if needed."""
    cache = CACHE_FOLDER / f"pbc_features_{backbone}.npz"
    if cache.is_file():
        cached = np.load(cache, allow_pickle=False)
        return {key: cached[key] for key in cached.files}
    from napari_alma.learning import pbc

    records = pbc.read_pbc(data_root() / "pbc_wbc_yolo")
    mpp = pbc.estimate_mpp(records)
    mapped = [r for r in records if r["prefix"] in pbc.PBC_TO_SCHEME]
    held_out = {r["cell_id"] for r in pbc.held_out_records(records)}
    model = _backbone(backbone)
    features = model.embed(pbc.cell_crops(mapped, mpp), device="cpu")
    labels = np.array([model.classes.index(pbc.PBC_TO_SCHEME[r["prefix"]]) for r in mapped])
    is_test = np.array([r["cell_id"] in held_out for r in mapped])
    data = {"pool_x": features[~is_test], "pool_y": labels[~is_test],
            "test_x": features[is_test], "test_y": labels[is_test],
            "classes": np.array(model.classes), "model_version": np.array(model.version)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data)
    return data


def _backbone(name: str):
    """Return the shipped model, or the same architecture with seeded random weights."""
    import torch

    from napari_alma.learning.model import (
        CellClassifier,
        default_model_path,
        load_model,
        network_from_card,
    )

    shipped = load_model(default_model_path())
    if name == "shipped":
        return shipped
    torch.manual_seed(0)
    card = {**shipped.card, "version": "random-init (seed 0)"}
    return CellClassifier(network_from_card(card), card)


def _dropout_rate() -> float:
    from napari_alma.learning.model import default_model_path, read_card

    return float(read_card(default_model_path())["architecture"]["dropout"])


def fit_softmax(features: np.ndarray, labels: np.ndarray, n_classes: int):
    """Fit multinomial logistic regression with L-BFGS; return the weights and biases."""
    import torch

    x = torch.from_numpy(features).double()
    y = torch.from_numpy(labels).long()
    weight = torch.zeros(features.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y)
        loss = loss + L2 * (weight**2).sum() / 2
        loss.backward()
        return loss

    optimiser.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def balanced_accuracy(true: np.ndarray, predicted: np.ndarray) -> float:
    """Return the mean recall over the classes present in ``true``."""
    return float(np.mean([np.mean(predicted[true == c] == c) for c in np.unique(true)]))


def fit(data: dict, labelled: np.ndarray):
    """Fit the learner on the labelled pool cells; return its weights and biases."""
    return fit_softmax(data["pool_x"][labelled], data["pool_y"][labelled], len(data["classes"]))


def score_on_test(data: dict, fitted) -> float:
    """Return the test balanced accuracy of a fitted learner."""
    weight, bias = fitted
    return balanced_accuracy(data["test_y"], (data["test_x"] @ weight + bias).argmax(axis=1))


def fit_and_score(data: dict, labelled: np.ndarray) -> float:
    """Fit on the labelled pool cells and return the test balanced accuracy."""
    return score_on_test(data, fit(data, labelled))


def query(data: dict, strategy: str, labelled: np.ndarray, batch: int, rng,
          fitted) -> np.ndarray:
    """Return the indices of the ``batch`` unlabelled pool cells the strategy picks.

    ``fitted`` is the learner fitted on ``labelled`` (the round's own fit).
    """
    from napari_alma.core.uncertainty import bald, score

    unlabelled = np.setdiff1d(np.arange(len(data["pool_y"])), labelled)
    if strategy == "random":
        return rng.choice(unlabelled, size=min(batch, len(unlabelled)), replace=False)
    weight, bias = fitted
    features = data["pool_x"][unlabelled]
    if strategy == "bald":
        keep = rng.random((MC_PASSES, *features.shape)) >= data["dropout"]
        dropped = features * keep / (1 - data["dropout"])
        scores = bald(_softmax(dropped @ weight + bias))
    else:
        scores = score(_softmax(features @ weight + bias), strategy)
    return unlabelled[np.argsort(-scores, kind="stable")[:batch]]


def run_strategy(data: dict, strategy: str, seed: int, args, target: float) -> dict:
    """Run the rounds of one strategy and seed; return its learning curve and its cost."""
    rng = np.random.default_rng(seed)
    labelled = np.concatenate([
        rng.choice(np.flatnonzero(data["pool_y"] == c), size=args.initial, replace=False)
        for c in range(len(data["classes"]))
    ])
    curve = []
    while True:
        fitted = fit(data, labelled)
        accuracy = score_on_test(data, fitted)
        curve.append((int(len(labelled)), round(accuracy, 4)))
        if accuracy >= target or len(labelled) >= min(args.max_labels, len(data["pool_y"])):
            break
        picked = query(data, strategy, labelled, args.batch, rng, fitted)
        labelled = np.concatenate([labelled, picked])
    reached = curve[-1][1] >= target
    return {"labels_to_target": curve[-1][0] if reached else None, "curve": curve}


def summarise(costs_by_strategy: dict) -> dict:
    """Return each strategy's costs, median (of the runs on target) and ratio to random."""
    summary = {}
    for name, costs in costs_by_strategy.items():
        reached = [c for c in costs if c is not None]
        summary[name] = {"labels_to_target": costs,
                         "median": float(np.median(reached)) if reached else None,
                         "reached": f"{len(reached)}/{len(costs)}"}
    random_median = summary["random"]["median"]
    for entry in summary.values():
        median = entry["median"]
        entry["vs_random"] = round(median / random_median, 3) if median and random_median else None
    return summary


def _record(results: list, args, seconds: float) -> dict:
    folds = []
    for data, full, target, runs in results:
        costs = {name: [r["labels_to_target"] for r in runs[name]] for name in STRATEGIES}
        folds.append({
            "fold": data["fold"],
            "features": f"{data['model_version']} (128 pooled features, frozen)",
            "pool_cells": int(len(data["pool_y"])), "test_cells": int(len(data["test_y"])),
            "full_pool_balanced_accuracy": round(full, 4), "target": round(target, 4),
            "strategies": summarise(costs),
            "curves": {name: [r["curve"] for r in runs[name]] for name in STRATEGIES},
        })
    pooled = summarise({name: [c for fold in folds
                               for c in fold["strategies"][name]["labels_to_target"]]
                        for name in STRATEGIES})
    return {
        "benchmark": "active_learning", "features": args.features,
        "backbone_epochs": args.epochs if args.features == "split" else None,
        "initial_per_class": args.initial, "batch": args.batch, "seeds": args.seeds,
        "max_labels": args.max_labels, "folds": folds, "strategies": pooled,
        "seconds": round(seconds, 1), "machine": machine_info(("numpy", "torch")),
    }
