"""Export the reviewed cells of a project as an active-learning data set."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from napari_alma.learning.predict import active_model_path
from napari_alma.slides.reader import SlideError, open_slide
from napari_alma.store.project import Project

logger = logging.getLogger(__name__)


# Sample weights by the source of a label, recorded in cells.csv and used by train's
# sampler. A correction is the strongest evidence (a reader disagreed with the model), a
# cell added by hand was classified from scratch, a confirmation may carry some
# automation bias, and a pseudo-label is the model's own unreviewed guess.
SAMPLE_WEIGHTS = {"corrected": 1.0, "added": 1.0, "model": 0.7, "pseudo": 0.3}
VAL_FRACTION = 0.2


def export_active_learning(
    project: Project,
    out_dir: str | Path,
    reader: str | None = None,
    model_dir: str | Path | None = None,
    overwrite: bool = False,
    pseudo_min_confidence: float | None = None,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
) -> Path:
    """Write every cell a reader labelled (confirmed, corrected or added) with its crop.

    Crops have the physical size and pixel size of the model that would be trained from
    them (the project's active model unless ``model_dir`` is given). Slides are named by
    their pseudonymous id only; file paths stay in the project.

    Each row carries its ``source`` (``model``: the reader confirmed the prediction;
    ``corrected``; ``added``; ``pseudo``: an unreviewed cell labelled with the model's
    class), ``reader``, ``model_version`` and a ``weight`` from ``SAMPLE_WEIGHTS``. Cells
    are split into train and val by slide, so no slide is on both sides (see
    :func:`split_by_slide`); the manifest's ``split`` entry lists the classes that could
    not be put on both sides.

    Parameters
    ----------
    project : Project
        The project to export.
    out_dir : str or Path
        A new folder (see :func:`napari_alma.learning.al_format.write_al_export`).
    reader : str, optional
        Export this reader's labels; by default each slide's primary reader's.
    model_dir : str or Path, optional
        Model folder whose input size (µm and pixels) sets the crops.
    overwrite : bool
        Replace an existing folder.
    pseudo_min_confidence : float, optional
        Also export unreviewed cells whose predicted class has at least this probability
        (0 to 1) as pseudo-labels, on training slides only: validation keeps human labels.
    seed : int
        Seed of the slide split.
    val_fraction : float
        Target share of each class's cells on validation slides.

    Returns
    -------
    Path
        The written folder.
    """
    from napari_alma.learning.al_format import write_al_export
    from napari_alma.learning.model import read_card

    card = read_card(active_model_path(project, model_dir))
    crop_um, crop_px = float(card["input_um"]), int(card["input_px"])
    tables, crops = [], []
    for slide_id in project.slides()["slide_id"]:
        table, slide_crops = _slide_rows(project, slide_id, reader, crop_um, crop_px,
                                         pseudo_min_confidence)
        tables.append(table)
        crops.append(slide_crops)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if table.empty or not (table["label_source"] != "pseudo").any():
        raise ValueError(
            f"Project {project.folder} has no reviewed cells to export. Review or correct "
            "cells first (each reviewed, corrected or added cell becomes a training example)."
        )
    table = table.rename(columns={"label_source": "source"}).drop(columns=["deleted"])
    table["weight"] = table["source"].map(SAMPLE_WEIGHTS).astype(float)
    table, report = split_by_slide(table, seed, val_fraction)
    crops = np.concatenate(crops)[table.pop("_row").to_numpy()]
    _log_split(report)
    manifest = {"crop_um": crop_um, "scheme": project.scheme.name,
                "scheme_version": project.scheme.version, "source_model": card["version"],
                "sample_weights": SAMPLE_WEIGHTS, "split": report}
    return write_al_export(out_dir, crops, table.reset_index(drop=True), manifest,
                           overwrite=overwrite)


def split_by_slide(table: pd.DataFrame, seed: int = 0, val_fraction: float = VAL_FRACTION):
    """Assign each human-labelled cell to train or val by slide, and report the classes.

    Slides are drawn into validation rarest class first (see
    :func:`napari_alma.learning.train.assign_splits`). With fewer than two slides nothing
    is split here: ``split`` stays empty and ``train`` splits that one slide by cell,
    which it reports as optimistic. Pseudo-labelled rows are marked train, and dropped
    from validation slides, so validation holds human labels only.

    Parameters
    ----------
    table : pandas.DataFrame
        Export rows with ``slide_id``, ``class``, ``source``.

    Returns
    -------
    table : pandas.DataFrame
        The kept rows with ``split`` set (a ``_row`` column keeps their original position).
    report : dict
        ``by`` ("slide" or "none: one slide"), ``seed``, ``val_fraction``, ``slides``
        ({"train": n, "val": n}), ``class_counts`` ({code: {"train": n, "val": n}}) and
        ``classes_not_on_both_sides`` ([{"class", "train", "val", "slides", "reason"}]).
    """
    from napari_alma.learning.train import assign_splits

    table = table.copy()
    table["_row"] = np.arange(len(table))
    human = table[table["source"] != "pseudo"].copy()
    human["split"] = ""
    if human["slide_id"].nunique() >= 2:
        human = assign_splits(human, seed, val_fraction)
    side = human.groupby("slide_id")["split"].first()
    pseudo = table[table["source"] == "pseudo"]
    pseudo = pseudo[pseudo["slide_id"].map(side) != "val"].copy()
    pseudo["split"] = "train"
    kept = pd.concat([human, pseudo]).sort_values("_row")
    return kept, _split_report(human, seed, val_fraction)


def _split_report(human: pd.DataFrame, seed: int, val_fraction: float) -> dict:
    by_slide = human["slide_id"].nunique() >= 2
    counts = {}
    missing = []
    for code, rows in human.groupby("class"):
        train = int((rows["split"] == "train").sum())
        val = int((rows["split"] == "val").sum())
        counts[code] = {"train": train, "val": val}
        slides = int(rows["slide_id"].nunique())
        if by_slide and (train == 0 or val == 0):
            reason = ("found on one slide only" if slides == 1
                      else "too few cells to spare for validation")
            missing.append({"class": code, "train": train, "val": val, "slides": slides,
                            "reason": reason})
    slides = human.groupby("split")["slide_id"].nunique()
    return {
        "by": "slide" if by_slide else "none: one slide; train splits it by cell",
        "seed": seed,
        "val_fraction": val_fraction,
        "slides": {side: int(slides.get(side, 0)) for side in ("train", "val")},
        "class_counts": counts,
        "classes_not_on_both_sides": missing,
    }


def _log_split(report: dict) -> None:
    # Logged at INFO: the manifest records these classes, and the command line and the
    # retrain dock show them to the user, so a warning here would print each one twice.
    for entry in report["classes_not_on_both_sides"]:
        logger.info("Class %s is not on both sides of the split (train %d, val %d): %s",
                       entry["class"], entry["train"], entry["val"], entry["reason"])


def _slide_rows(project: Project, slide_id: str, reader, crop_um: float, crop_px: int,
                pseudo_min_confidence: float | None = None):
    from napari_alma.learning.crops import extract_crops

    table = project.cell_table(slide_id, reader=reader)
    table = _labelled_or_pseudo(table, pseudo_min_confidence)
    table = table.drop(columns=["source", "probabilities"])
    slide_row = project.slide(slide_id)
    if table.empty:
        return table, np.empty((0, crop_px, crop_px, 3), np.uint8)
    if not slide_row["mpp"]:
        raise ValueError(f"Slide {slide_id} has no pixel size; set it before exporting.")
    try:
        slide = open_slide(slide_row["path"])
    except SlideError as err:
        raise SlideError(
            f"Cannot export slide {slide_id}: its image {slide_row['path']} cannot be opened "
            f"({err}). Move the file back or open it once with napari-alma to update its path."
        ) from err
    positions = table[["row", "col"]].to_numpy(dtype=float)
    crops = extract_crops(slide.levels[0], positions, slide_row["mpp"], crop_um, crop_px)
    logger.info("Slide %s: exporting %d cells", slide_id, len(table))
    return table, crops


def _labelled_or_pseudo(table: pd.DataFrame, min_confidence: float | None) -> pd.DataFrame:
    """Keep the labelled cells and, with ``min_confidence``, confident unreviewed ones."""
    labelled = table["class"] != ""
    if min_confidence is None:
        return table[labelled]
    if not 0.0 < min_confidence <= 1.0:
        raise ValueError(
            f"Pseudo-label confidence {min_confidence} is invalid; give a probability in (0, 1]."
        )
    confident = ~labelled & (table["predicted_class"] != "") & (
        table["confidence"] >= min_confidence)
    table = table[labelled | confident].copy()
    pseudo = table["class"] == ""
    table.loc[pseudo, "class"] = table.loc[pseudo, "predicted_class"]
    table.loc[pseudo, "label_source"] = "pseudo"
    return table
