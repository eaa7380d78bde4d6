"""Measure how many labels each query strategy needs on the PBC cells.

``python -m benchmarks active_learning [--seeds N] [--batch B] [--initial K] [--max-labels M]``

Protocol (fixed before any run; nothing here is tuned on the test cells):

1. The shipped model embeds every mapped PBC cell once: the 128 pooled features that feed
   its head, from crops of 20 µm (cached under ``out/``).
2. Pool: the 800 cells the shipped model was trained on. Test: the 200 held-out cells it
   never saw (the stratified test split of ``napari_alma.learning.pbc``).
3. Learner: multinomial logistic regression (L2 weight 1e-2 per cell, L-BFGS) on the
   features standardised with the pool's mean and deviation, with the shipped model's
   dropout (p = 0.3) before it for BALD's 10 Monte-Carlo passes.
4. Each seed starts from ``--initial`` random labels per class. Each round fits the
   learner, scores the test cells (balanced accuracy), and queries ``--batch`` more pool
   cells by the strategy: entropy, margin, least confidence, BALD or random.
5. Target: 95 % of the balanced accuracy of the same learner fitted on all 800 pool
   labels. A strategy's cost is its number of labels at the first round on target.

Caveat: the features come from a network trained with the pool's labels, so every
strategy, random included, reaches the target with fewer labels than it would from a
generic backbone. The comparison between strategies is what this measures.

``--features random`` replaces the shipped weights by seeded random weights of the same
architecture. That backbone has seen no label at all, so the regime is harder and free of
the leak. Everything else stays the same.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import REPO_ROOT, data_root, emit, machine_info

STRATEGIES = ("random", "entropy", "margin", "least_confidence", "bald")
TARGET_SHARE = 0.95
L2 = 1e-2
MC_PASSES = 10
CACHE_FOLDER = REPO_ROOT / "out" / "benchmarks"


def main(argv: list[str]) -> int:
    """Run the active-learning benchmark; the module docstring states the protocol."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks active_learning")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--batch", type=int, default=10, help="labels queried per round")
    parser.add_argument("--initial", type=int, default=2, help="first labels per class")
    parser.add_argument("--max-labels", type=int, default=400, help="stop at this many")
    parser.add_argument("--features", choices=("shipped", "random"), default="shipped",
                        help="backbone: the shipped model, or its architecture with seeded "
                        "random weights")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = load_features(args.features)
    data["dropout"] = _dropout_rate()
    full = fit_and_score(data, np.arange(len(data["pool_y"])))
    target = TARGET_SHARE * full
    runs = {name: [] for name in STRATEGIES}
    for seed in range(args.seeds):
        for name in STRATEGIES:
            runs[name].append(run_strategy(data, name, seed, args, target))
    emit(_record(runs, full, target, args, data, time.perf_counter() - started))
    return 0


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


def fit_and_score(data: dict, labelled: np.ndarray) -> float:
    """Fit on the labelled pool cells and return the test balanced accuracy."""
    weight, bias = fit_softmax(data["pool_x"][labelled], data["pool_y"][labelled],
                               len(data["classes"]))
    predicted = (data["test_x"] @ weight + bias).argmax(axis=1)
    return balanced_accuracy(data["test_y"], predicted)


def query(data: dict, strategy: str, labelled: np.ndarray, batch: int, rng) -> np.ndarray:
    """Return the indices of the ``batch`` unlabelled pool cells the strategy picks."""
    from napari_alma.core.uncertainty import bald, score

    unlabelled = np.setdiff1d(np.arange(len(data["pool_y"])), labelled)
    if strategy == "random":
        return rng.choice(unlabelled, size=min(batch, len(unlabelled)), replace=False)
    weight, bias = fit_softmax(data["pool_x"][labelled], data["pool_y"][labelled],
                               len(data["classes"]))
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
        accuracy = fit_and_score(data, labelled)
        curve.append((int(len(labelled)), round(accuracy, 4)))
        if accuracy >= target or len(labelled) >= min(args.max_labels, len(data["pool_y"])):
            break
        labelled = np.concatenate([labelled, query(data, strategy, labelled, args.batch, rng)])
    reached = curve[-1][1] >= target
    return {"labels_to_target": curve[-1][0] if reached else None, "curve": curve}


def _record(runs: dict, full: float, target: float, args, data: dict, seconds: float) -> dict:
    summary = {}
    for name, results in runs.items():
        costs = [r["labels_to_target"] for r in results]
        reached = [c for c in costs if c is not None]
        summary[name] = {"labels_to_target": costs,
                         "median": float(np.median(reached)) if reached else None,
                         "reached": f"{len(reached)}/{len(costs)}"}
    random_median = summary["random"]["median"]
    for name in STRATEGIES:
        median = summary[name]["median"]
        summary[name]["vs_random"] = (round(median / random_median, 3)
                                      if median and random_median else None)
    return {
        "benchmark": "active_learning",
        "features": f"{data['model_version']} (128 pooled features, frozen)",
        "pool_cells": int(len(data["pool_y"])), "test_cells": int(len(data["test_y"])),
        "full_pool_balanced_accuracy": round(full, 4), "target": round(target, 4),
        "initial_per_class": args.initial, "batch": args.batch, "seeds": args.seeds,
        "max_labels": args.max_labels, "strategies": summary,
        "seconds": round(seconds, 1), "machine": machine_info(("numpy", "torch")),
    }
