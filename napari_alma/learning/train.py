"""Train a cell classifier on an active-learning export, from scratch or from a parent model.

:func:`train_model` is what ``napari-alma train DATA [--from MODEL] --out MODEL_DIR`` runs.
It splits the labelled cells into train and validation by slide and samples classes evenly.
It augments with flips, rotations, small scale and stain changes (optionally also
haematoxylin-eosin density jitter and mixup), trains with AdamW and a one-cycle cosine
learning rate, and stops early on validation balanced accuracy. The model
folder it writes has a card with the data, the command and the validation metrics.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from napari_alma.learning import al_format
from napari_alma.learning.model import (
    CARD_FORMAT,
    CARD_FORMAT_VERSION,
    architecture_params,
    build_network,
    load_model,
    resize_crops,
    save_model,
    select_device,
    to_device,
    to_tensor,
)

logger = logging.getLogger(__name__)

VAL_FRACTION = 0.2
MAX_INPUT_PX = 96
DEFAULT_INPUT_PX = 80
SCRATCH_EPOCHS = 50
FINETUNE_EPOCHS = 20
PATIENCE = 20
BATCH_SIZE = 32
# NOTE: both off by default. On the PBC cells (validation split of 160 cells, 50 epochs),
# stain density jitter of 0.08 lowered the validation balanced accuracy of the last five
# epochs from 0.85 to 0.81, and mixup (alpha 0.4) with that jitter to 0.80.
MIXUP_ALPHA = 0.0
HED_SIGMA = 0.0
# skimage.color.rgb_from_hed: rows are the haematoxylin, eosin and DAB optical densities.
# MGG is not H&E, but its basic (blue) and acidic (pink) dyes sit close to these axes.
RGB_FROM_HED = ((0.65, 0.70, 0.29), (0.07, 0.99, 0.11), (0.27, 0.57, 0.78))


class TrainingCancelled(Exception):
    """Training was cancelled through the ``cancel`` callback; nothing was written."""


class TrainingDataError(ValueError):
    """The export cannot be trained on: unknown classes, no labelled cells, no validation."""


def train_model(
    data_dir,
    out_dir,
    from_model=None,
    device: str = "auto",
    epochs: int | None = None,
    seed: int = 0,
    progress=None,
    cancel=None,
    command: str | None = None,
    version: str | None = None,
    baseline_model=None,
) -> dict:
    """Train a classifier on an active-learning export and write it as a model folder.

    Parameters
    ----------
    data_dir : str or Path
        An active-learning export folder (``manifest.json``, ``cells.csv``, ``crops/``).
        Cells with an empty class or with ``split == "test"`` are never trained on. When
        every other labelled cell is marked ``split == "train"``, there is no validation:
        training runs all the epochs, keeps the last weights and the card has no
        validation metrics.
    out_dir : str or Path
        The model folder to write (replaced if it exists).
    from_model : str or Path, optional
        A parent model folder to fine-tune. Its classes keep their outputs; classes in the
        data but not in the parent get new rows in the last layer. Without it, training
        starts from random weights.
    device : str
        "auto" (cuda, then mps, else cpu), "cpu", "cuda" or "mps". Mixed precision is used
        on cuda only.
    epochs : int, optional
        Maximum epochs; default 50 from scratch, 20 when fine-tuning. Training stops
        earlier when validation balanced accuracy has not improved for 20 epochs.
    seed : int
        Seed of the split, the sampling, the augmentation and the initial weights.
    progress : callable(fraction: float, message: str), optional
        Called after each epoch with the fraction done.
    cancel : callable() -> bool, optional
        Checked before each batch; when it returns True, :class:`TrainingCancelled` is
        raised and nothing is written.
    command : str, optional
        The command line to record in the card.
    version : str, optional
        The new model's version; default ``<data folder name>-<YYYY.MM.DD>-<hash>``.
    baseline_model : str or Path, optional
        A model to score on the same validation cells, for the decision to activate the
        new one (by default ``from_model``). Its balanced accuracy is stored in the card
        under ``metrics.baseline``; a validation class it does not know counts as missed.

    Returns
    -------
    dict
        The card of the written model.

    Raises
    ------
    TrainingDataError
        When a class is not in the scheme, or there is nothing to train or validate on.
    TrainingCancelled
        When ``cancel`` returned True.
    """
    import torch

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    manifest, table = al_format.read_al_export(data_dir)
    scheme = _check_classes(manifest, table, data_dir)
    parent = load_model(from_model, scheme=scheme) if from_model is not None else None
    labelled_splits = set(table.loc[table["class"] != "", "split"])
    all_marked_train = "train" in labelled_splits and not labelled_splits & {"", "val"}
    table = assign_splits(table, seed)
    classes = _output_classes(scheme, table, parent)
    geometry = _input_geometry(manifest, parent)
    data = _load_split_data(data_dir, table, manifest, geometry, classes, all_marked_train)

    device = select_device(device)
    torch.manual_seed(seed)
    normalization = parent.card["normalization"] if parent else _normalization(data["train_x"])
    network = _initial_network(classes, parent)
    max_epochs = epochs or (FINETUNE_EPOCHS if parent else SCRATCH_EPOCHS)
    settings = {"epochs": max_epochs, "lr": 5e-4 if parent else 1.5e-3, "seed": seed,
                "device": device, "normalization": normalization,
                "mixup_alpha": MIXUP_ALPHA, "hed_sigma": HED_SIGMA}
    started = time.monotonic()
    result = _fit(network, data, settings, progress, cancel)
    logger.info("Trained %d epochs in %.0f s", result["epochs_run"], time.monotonic() - started)

    card = _build_card(
        manifest, data_dir, classes, geometry, normalization, parent, result, settings,
        command, version, data,
    )
    baseline = baseline_model if baseline_model is not None else from_model
    if result["metrics"] is not None and baseline is not None:
        card["metrics"]["baseline"] = score_baseline(baseline, data_dir, table, classes,
                                                     manifest, device)
    save_model(network.cpu(), card, out_dir, extra_files=_plots(card))
    return card


def score_baseline(model_dir, data_dir: Path, table, classes: list[str], manifest: dict,
                   device: str = "cpu") -> dict:
    """Return the version and the balanced accuracy of a model on the validation cells.

    The crops are resized to the model's own input size. A validation cell of a class the
    model does not know counts as missed, so a model that lacks a class scores lower.
    """
    model = load_model(model_dir)
    rows = table[(table["split"] == "val") & table["class"].isin(classes)]
    geometry = {"crop_um": float(manifest["crop_um"]), "input_um": model.input_um,
                "input_px": model.input_px}
    crops = _fit_geometry(al_format.load_crops(data_dir, rows), geometry)
    predicted = np.asarray(model.classes)[model.predict(crops, device=device).argmax(axis=1)]
    true = rows["class"].to_numpy()
    recalls = [float(np.mean(predicted[true == code] == code)) for code in sorted(set(true))]
    return {"version": model.version, "balanced_accuracy": round(float(np.mean(recalls)), 4),
            "n_test": int(len(rows))}


def _plots(card: dict) -> dict:
    """Return the plot files of a model folder: the validation confusion matrix."""
    from napari_alma.learning.plots import CONFUSION_NAME, confusion_png

    metrics = card.get("metrics") or {}
    if "confusion" not in metrics:
        return {}
    title = (f"{card['version']}: balanced accuracy {metrics['balanced_accuracy']:.3f} "
             f"on {metrics['n_test']} validation cells")
    return {CONFUSION_NAME: confusion_png(metrics["confusion"], card["classes"], title)}


def _check_classes(manifest: dict, table, data_dir: Path):
    from napari_alma.core.scheme import SchemeError, load_scheme

    try:
        scheme = load_scheme(manifest["scheme"])
    except SchemeError as err:
        raise TrainingDataError(f"{data_dir / al_format.MANIFEST_NAME}: {err}") from err
    labelled = sorted(set(table["class"]) - {""})
    unknown = [code for code in labelled if code not in scheme]
    if unknown:
        raise TrainingDataError(
            f"{data_dir / al_format.TABLE_NAME}: class(es) {', '.join(unknown)} are not in "
            f"scheme {scheme.name!r}; relabel those cells or use the scheme they belong to."
        )
    if not labelled:
        raise TrainingDataError(f"{data_dir / al_format.TABLE_NAME} has no labelled cells.")
    return scheme


def assign_splits(table, seed: int = 0, val_fraction: float = VAL_FRACTION):
    """Assign train or val to the labelled cells whose ``split`` is empty, by slide.

    Rows that already carry a split keep it; all empty-split cells of one slide land on the
    same side. Slides are drawn into validation, rarest class first, until each class has
    about ``val_fraction`` of its cells there, as long as the class keeps cells for training.

    Parameters
    ----------
    table : pandas.DataFrame
        ``cells.csv`` rows, with ``class``, ``slide_id`` and ``split``.
    seed : int
        Seed of the slide order.
    val_fraction : float
        Target share of each class's cells in validation.

    Returns
    -------
    pandas.DataFrame
        The labelled rows with ``split`` filled in (train, val or test).
    """
    table = table[table["class"] != ""].copy()
    free = table[table["split"] == ""]
    rng = np.random.default_rng(seed)
    has_val = (table["split"] == "val").any()
    if free["slide_id"].nunique() == 1 and not has_val:
        return _split_cells_of_one_slide(table, rng, val_fraction)
    slides = list(free["slide_id"].unique())
    rng.shuffle(slides)
    counts_by_slide = free.groupby(["slide_id", "class"]).size()
    val_slides: set[str] = set()
    class_totals = free["class"].value_counts().sort_values(kind="stable")
    for code, total in class_totals.items():
        holders = [s for s in slides if (s, code) in counts_by_slide.index]
        target = max(1, round(val_fraction * total)) if len(holders) > 1 else 0
        in_val = sum(counts_by_slide.get((s, code), 0) for s in val_slides)
        for slide in holders:
            if in_val >= target:
                break
            if slide not in val_slides and total - in_val - counts_by_slide[(slide, code)] > 0:
                val_slides.add(slide)
                in_val += counts_by_slide[(slide, code)]
    is_free = table["split"] == ""
    table.loc[is_free, "split"] = np.where(table.loc[is_free, "slide_id"].isin(val_slides),
                                           "val", "train")
    return table


def _split_cells_of_one_slide(table, rng, val_fraction: float):
    """Split the cells of a lone slide by cell, about ``val_fraction`` of each class to val.

    NOTE: with one slide, validation cells share the slide (stain, scanner, patient) with
    the training cells, so the validation figures are optimistic. The card's split
    description states this.
    A class with a single cell stays in training.
    """
    is_free = table["split"] == ""
    split = np.full(int(is_free.sum()), "train", dtype=object)
    classes = table.loc[is_free, "class"].to_numpy()
    for code in sorted(set(classes)):
        rows = np.flatnonzero(classes == code)
        n_val = int(round(val_fraction * len(rows))) if len(rows) > 1 else 0
        split[rng.choice(rows, size=max(n_val, 1 if len(rows) > 1 else 0), replace=False)] = "val"
    table.loc[is_free, "split"] = split
    return table


def _output_classes(scheme, table, parent) -> list[str]:
    present = set(table.loc[table["split"] == "train", "class"])
    if parent is None:
        return [code for code in scheme.codes if code in present]
    added = [code for code in scheme.codes if code in present and code not in parent.classes]
    if added:
        logger.info("Adding classes %s to the head of %s", added, parent.version)
    return parent.classes + added


def _input_geometry(manifest: dict, parent) -> dict:
    crop_um, crop_px = float(manifest["crop_um"]), int(manifest["crop_px"])
    if parent is None:
        input_px = crop_px if crop_px <= MAX_INPUT_PX else DEFAULT_INPUT_PX
        return {"crop_um": crop_um, "input_um": crop_um, "input_px": input_px}
    if crop_um < parent.input_um * 0.98:
        raise TrainingDataError(
            f"The export's crops cover {crop_um:g} µm but model {parent.version} expects "
            f"{parent.input_um:g} µm; export again with a crop of at least {parent.input_um:g} µm."
        )
    return {"crop_um": crop_um, "input_um": parent.input_um, "input_px": parent.input_px}


def _load_split_data(data_dir: Path, table, manifest: dict, geometry: dict, classes,
                     allow_no_val: bool = False) -> dict:
    """Load the crops and labels of the train and val rows.

    Without validation rows this raises, unless ``allow_no_val`` (every labelled row of
    the export was marked ``split=train``, a deliberate final fit on all the cells).
    """
    index = {code: i for i, code in enumerate(classes)}
    data = {}
    for split in ("train", "val"):
        rows = table[(table["split"] == split) & table["class"].isin(classes)]
        crops = al_format.load_crops(data_dir, rows)
        data[f"{split}_x"] = _fit_geometry(crops, geometry) if len(rows) else crops
        data[f"{split}_y"] = rows["class"].map(index).to_numpy(dtype=np.int64)
        data[f"{split}_w"] = rows["weight"].to_numpy(dtype=np.float64)
        data[f"{split}_slides"] = int(rows["slide_id"].nunique())
        data[f"{split}_slide_ids"] = set(rows["slide_id"])
    if len(data["train_y"]) == 0:
        raise TrainingDataError(f"{data_dir}: no labelled cells are left for training.")
    if len(data["val_y"]) == 0 and not allow_no_val:
        raise TrainingDataError(
            f"{data_dir}: no cells for validation; label cells on more than one slide, or "
            "mark some rows split=val in cells.csv."
        )
    in_val = set(data["val_y"]) if len(data["val_y"]) else set(range(len(classes)))
    data["missing_in_val"] = [c for i, c in enumerate(classes) if i not in in_val]
    if data["missing_in_val"]:
        logger.warning("Classes without validation cells: %s", data["missing_in_val"])
    return data


def _fit_geometry(crops: np.ndarray, geometry: dict) -> np.ndarray:
    """Cut the central input_um out of crops covering crop_um, then resize to input_px."""
    ratio = geometry["input_um"] / geometry["crop_um"]
    if ratio < 0.98:
        side = crops.shape[1]
        keep = int(round(side * ratio))
        start = (side - keep) // 2
        crops = crops[:, start : start + keep, start : start + keep]
    return resize_crops(crops, geometry["input_px"])


def _normalization(crops: np.ndarray) -> dict:
    pixels = crops.reshape(-1, 3).astype(np.float64) / 255
    std = np.maximum(pixels.std(axis=0), 1e-3)
    return {"mean": [round(float(v), 5) for v in pixels.mean(axis=0)],
            "std": [round(float(v), 5) for v in std]}


def _initial_network(classes: list[str], parent):
    """Build the network; with a parent, copy its weights and extend its head by new rows."""
    import torch

    params = parent.card["architecture"] if parent else architecture_params()
    network = build_network(len(classes), tuple(params["widths"]), params["dropout"])
    if parent is None:
        return network
    state = parent.network.state_dict()
    known = len(parent.classes)
    head_weight, head_bias = state.pop("head.weight"), state.pop("head.bias")
    network.load_state_dict(state, strict=False)
    with torch.no_grad():
        network.head.weight[:known] = head_weight
        network.head.bias[:known] = head_bias
        network.head.bias[known:] = head_bias.mean()
    return network


def _fit(network, data: dict, settings: dict, progress, cancel) -> dict:
    """Run the epochs; keep the weights of the best validation balanced accuracy."""
    import torch

    device, max_epochs = settings["device"], settings["epochs"]
    train_x = torch.from_numpy(data["train_x"]).permute(0, 3, 1, 2).contiguous()
    train_y = torch.from_numpy(data["train_y"].copy())
    sample_weights = torch.from_numpy(_balanced_weights(data["train_y"], data["train_w"]))
    steps = max(1, math.ceil(len(train_y) / BATCH_SIZE))
    network.to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings["lr"], weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings["lr"], total_steps=max_epochs * steps, pct_start=0.15
    )
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda"))
    generator = torch.Generator().manual_seed(settings["seed"])
    n_classes = int(network.head.out_features)
    has_val = len(data["val_y"]) > 0
    best = {"score": -1.0, "state": None, "epoch": 0}
    for epoch in range(1, max_epochs + 1):
        network.train()
        order = torch.multinomial(sample_weights, steps * BATCH_SIZE, True, generator=generator)
        for step in range(steps):
            if cancel is not None and cancel():
                raise TrainingCancelled("Training cancelled; no model was written.")
            batch = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            inputs = augment(train_x[batch], generator, settings["normalization"],
                             settings.get("hed_sigma", 0.0))
            inputs, targets = mixup(inputs, train_y[batch], n_classes, generator,
                                    settings.get("mixup_alpha", 0.0))
            _train_step(network, to_device(inputs, device), to_device(targets, device),
                        optimizer, scaler, device)
            scheduler.step()
        if not has_val:
            _report(progress, epoch, max_epochs, "no validation split")
            continue
        score = _evaluate(network, data, settings)["balanced_accuracy"]
        if score > best["score"]:
            best = {"score": score, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in network.state_dict().items()}}
        _report(progress, epoch, max_epochs,
                f"val balanced accuracy {score:.3f} (best {best['score']:.3f})")
        if epoch - best["epoch"] >= PATIENCE:
            break
    if not has_val:
        return {"epochs_run": epoch, "best_epoch": epoch, "metrics": None}
    network.load_state_dict(best["state"])
    metrics = _evaluate(network, data, settings)
    return {"epochs_run": epoch, "best_epoch": best["epoch"], "metrics": metrics}


def _report(progress, epoch: int, max_epochs: int, text: str) -> None:
    logger.info("epoch %d/%d: %s", epoch, max_epochs, text)
    if progress is not None:
        progress(epoch / max_epochs, f"epoch {epoch}/{max_epochs}: {text}")


def _balanced_weights(labels: np.ndarray, row_weights: np.ndarray) -> np.ndarray:
    """Return per-cell sampling weights that draw each class equally often."""
    counts = np.bincount(labels)
    weights = row_weights / counts[labels]
    if weights.sum() <= 0:
        weights = 1.0 / counts[labels]
    return weights


def _train_step(network, inputs, labels, optimizer, scaler, device: str) -> float:
    """Take one optimiser step; ``labels`` are class indices (N,) or soft targets (N, K)."""
    import torch
    from torch.nn import functional

    with torch.autocast("cuda", enabled=device.startswith("cuda")):
        logits = network(inputs).float()
    if labels.ndim == 1:
        loss = functional.cross_entropy(logits, labels, label_smoothing=0.05)
    else:
        loss = -(labels * functional.log_softmax(logits, dim=1)).sum(dim=1).mean()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def augment(batch, generator, normalization: dict, hed_sigma: float = 0.0):
    """Randomly flip, rotate, rescale, shift and stain-jitter a (N, 3, px, px) uint8 batch.

    Parameters
    ----------
    batch : (N, 3, px, px) uint8 tensor
        RGB crops.
    generator : torch.Generator
        Source of the random draws.
    normalization : dict
        ``mean`` and ``std`` per channel, applied last.
    hed_sigma : float
        When above 0, each crop's haematoxylin, eosin and DAB optical densities are scaled
        by 1 ± ``hed_sigma`` and shifted by ± ``hed_sigma`` / 3 (stain colour jitter).

    Returns
    -------
    (N, 3, px, px) float32 tensor
        Normalised crops. Rotations are by any angle, so they include the 90-degree ones.
        Scale varies by ±10 %, shift by ±4 % of the side, brightness and contrast by ±10 %,
        and each channel's gain by ±5 %.
    """
    import torch
    from torch.nn import functional

    n = batch.shape[0]
    images = batch.float() / 255

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    angle = uniform(0, 2 * math.pi)
    scale = uniform(0.9, 1.1)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, uniform(-0.08, 0.08)], 1),
                         torch.stack([sin * flip, cos, uniform(-0.08, 0.08)], 1)], 1)
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    images = functional.grid_sample(images, grid, padding_mode="reflection", align_corners=False)
    if hed_sigma > 0:
        images = hed_jitter(images, uniform(1 - hed_sigma, 1 + hed_sigma, 3),
                            uniform(-hed_sigma / 3, hed_sigma / 3, 3))

    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * uniform(0.9, 1.1, 1, 1, 1) + mean * uniform(0.9, 1.1, 1, 1, 1)
    images = (images * uniform(0.95, 1.05, 3, 1, 1)).clamp(0, 1)
    mean_t = torch.tensor(normalization["mean"]).view(1, 3, 1, 1)
    std_t = torch.tensor(normalization["std"]).view(1, 3, 1, 1)
    return (images - mean_t) / std_t


def hed_jitter(images, gain, shift):
    """Scale and shift the stain optical densities of RGB images in [0, 1].

    Parameters
    ----------
    images : (N, 3, H, W) float tensor
        RGB in [0, 1].
    gain, shift : (N, 3) float tensors
        Per image, the factor and the offset (optical density units) of the haematoxylin,
        eosin and DAB densities.

    Returns
    -------
    (N, 3, H, W) float tensor
        RGB in [0, 1]; a gain of 1 and a shift of 0 return the input (up to rounding).
    """
    import torch

    rgb_from_hed = torch.tensor(RGB_FROM_HED, dtype=images.dtype)
    hed_from_rgb = torch.linalg.inv(rgb_from_hed)
    density = -torch.log(images.clamp(1 / 255, 1))
    # Row vectors: density = hed @ rgb_from_hed, so the change is one 3x3 matrix per image.
    matrix = hed_from_rgb @ torch.diag_embed(gain) @ rgb_from_hed
    offset = (shift @ rgb_from_hed).view(-1, 3, 1, 1)
    density = torch.einsum("nchw,ncd->ndhw", density, matrix) + offset
    return torch.exp(-density.clamp_min(0)).clamp(0, 1)


def mixup(inputs, labels, n_classes: int, generator, alpha: float):
    """Blend each crop and its one-hot label with another crop of the batch (mixup).

    Parameters
    ----------
    inputs : (N, 3, px, px) float tensor
        Augmented, normalised crops.
    labels : (N,) int64 tensor
        Class indices.
    n_classes : int
        Number of outputs K.
    generator : torch.Generator
        Source of the random draws.
    alpha : float
        The mixing weight is drawn from Beta(alpha, alpha); 0 turns mixup off.

    Returns
    -------
    tuple
        The inputs and, when mixing, (N, K) soft targets (else ``labels`` unchanged).
    """
    import torch
    from torch.nn import functional

    if alpha <= 0 or len(labels) < 2:
        return inputs, labels
    # torch's Beta sampler takes no generator, so numpy draws the weights from a seed
    # taken from the generator, and a run repeats for the same seed.
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    weight = torch.from_numpy(rng.beta(alpha, alpha, size=len(labels))).float()
    # The larger share goes to the crop's own label, so no crop loses its identity.
    weight = torch.maximum(weight, 1 - weight)
    partner = torch.randperm(len(labels), generator=generator)
    targets = functional.one_hot(labels, n_classes).float()
    targets = targets * 0.95 + 0.05 / n_classes
    mixed = inputs * weight.view(-1, 1, 1, 1) + inputs[partner] * (1 - weight.view(-1, 1, 1, 1))
    weight = weight.view(-1, 1)
    return mixed, targets * weight + targets[partner] * (1 - weight)


def _evaluate(network, data: dict, settings: dict) -> dict:
    probs = predict_array(network, data["val_x"], settings["normalization"], settings["device"])
    return classification_metrics(data["val_y"], probs.argmax(axis=1), probs.shape[1])


def predict_array(network, crops: np.ndarray, normalization: dict, device: str = "cpu",
                  batch_size: int = 128) -> np.ndarray:
    """Return softmax probabilities (N, K) of ``network`` on (N, px, px, 3) uint8 crops."""
    import torch

    network.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = to_tensor(crops[start : start + batch_size], normalization).to(device)
            outputs.append(torch.softmax(network(batch).float(), dim=1).cpu().numpy())
    return np.concatenate(outputs)


def classification_metrics(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict:
    """Compute balanced accuracy, per-class F1 and the confusion matrix.

    Parameters
    ----------
    true, predicted : (N,) int arrays
        Class indices.
    n_classes : int
        Number of classes K.

    Returns
    -------
    dict
        ``balanced_accuracy`` (mean recall over the classes present in ``true``),
        ``recall`` and ``f1`` as (K,) lists (NaN for a class absent from ``true`` and
        ``predicted``), ``confusion`` as a K x K list (rows true, columns predicted).
    """
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (np.asarray(true), np.asarray(predicted)), 1)
    support = confusion.sum(axis=1)
    hits = np.diag(confusion).astype(float)
    predicted_total = confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hits / support
        precision = np.where(predicted_total > 0, hits / predicted_total, 0.0)
        f1 = np.where(support + predicted_total > 0, 2 * hits / (support + predicted_total),
                      np.nan)
    present = support > 0
    balanced = float(recall[present].mean()) if present.any() else float("nan")
    return {"balanced_accuracy": balanced, "recall": recall.tolist(),
            "precision": precision.tolist(), "f1": f1.tolist(), "confusion": confusion.tolist()}


def data_fingerprint(data_dir) -> str:
    """Return the sha256 of ``cells.csv`` followed by ``manifest.json`` of an export."""
    digest = hashlib.sha256()
    for name in (al_format.TABLE_NAME, al_format.MANIFEST_NAME):
        digest.update((Path(data_dir) / name).read_bytes())
    return digest.hexdigest()


def metrics_entry(metrics: dict, classes: list[str], split: str, n: int) -> dict:
    """Return the card's ``metrics`` entry from :func:`classification_metrics` output."""
    return {
        "balanced_accuracy": round(metrics["balanced_accuracy"], 4),
        "per_class_f1": {c: (None if math.isnan(v) else round(v, 4))
                         for c, v in zip(classes, metrics["f1"])},
        "per_class_recall": {c: (None if math.isnan(v) else round(v, 4))
                             for c, v in zip(classes, metrics["recall"])},
        "split": split,
        "n_test": int(n),
        "confusion": metrics["confusion"],
    }


def _metrics_or_none(metrics, classes: list[str], split: str, n: int) -> dict:
    if metrics is None:
        return {"split": "none: every labelled cell of the export was marked split=train, "
                         "so the model has no validation metrics", "n_test": 0}
    return metrics_entry(metrics, classes, split, n)


def _build_card(manifest, data_dir, classes, geometry, normalization, parent, result,
                settings, command, version, data) -> dict:
    from napari_alma import __version__

    fingerprint = data_fingerprint(data_dir)
    now = datetime.now(timezone.utc)
    version = version or f"{data_dir.name}-{now:%Y.%m.%d}-{fingerprint[:8]}"
    split_text = (
        f"validation split of {data_dir.name}: {len(data['val_y'])} cells on "
        f"{data['val_slides']} slides, no slide shared with the {len(data['train_y'])} "
        f"training cells on {data['train_slides']} slides"
    )
    if data["val_slide_ids"] & data["train_slide_ids"]:
        split_text = (
            f"validation split of {data_dir.name}: {len(data['val_y'])} cells drawn by cell "
            f"from the same slide as the {len(data['train_y'])} training cells (the export "
            "holds one slide), so the validation figures are optimistic"
        )
    return {
        "format": CARD_FORMAT,
        "format_version": CARD_FORMAT_VERSION,
        "version": version,
        "parent_version": parent.version if parent else None,
        "created": now.isoformat(timespec="seconds"),
        "scheme": manifest["scheme"],
        "scheme_version": int(manifest.get("scheme_version", 1)),
        "classes": classes,
        "input_um": geometry["input_um"],
        "input_px": geometry["input_px"],
        "normalization": normalization,
        "architecture": parent.card["architecture"] if parent else architecture_params(),
        "training": {
            "data": f"{data_dir.name}: {manifest.get('description', 'active-learning export')}",
            "data_fingerprint": fingerprint,
            "command": command,
            "epochs": result["epochs_run"],
            "best_epoch": result["best_epoch"],
            "max_epochs": settings["epochs"],
            "device": settings["device"],
            "seed": settings["seed"],
            "learning_rate": settings["lr"],
            "n_train": int(len(data["train_y"])),
            "n_val": int(len(data["val_y"])),
            "classes_without_validation": data["missing_in_val"],
            "attribution": manifest.get("attribution"),
            "generator": f"napari-alma {__version__}",
        },
        "metrics": _metrics_or_none(result["metrics"], classes, split_text, len(data["val_y"])),
    }
