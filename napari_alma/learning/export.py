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


def export_active_learning(
    project: Project,
    out_dir: str | Path,
    reader: str | None = None,
    model_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write every cell a reader labelled (confirmed, corrected or added) with its crop.

    Crops have the physical size and pixel size of the model that would be trained from
    them (the project's active model unless ``model_dir`` is given). Slides are named by
    their pseudonymous id only; file paths stay in the project.

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
        table, slide_crops = _slide_rows(project, slide_id, reader, crop_um, crop_px)
        tables.append(table)
        crops.append(slide_crops)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if table.empty:
        raise ValueError(
            f"Project {project.folder} has no reviewed cells to export. Review or correct "
            "cells first (each reviewed, corrected or added cell becomes a training example)."
        )
    table = table.rename(columns={"label_source": "source"}).drop(columns=["deleted"])
    manifest = {"crop_um": crop_um, "scheme": project.scheme.name,
                "scheme_version": project.scheme.version, "source_model": card["version"]}
    return write_al_export(out_dir, np.concatenate(crops), table, manifest, overwrite=overwrite)


def _slide_rows(project: Project, slide_id: str, reader, crop_um: float, crop_px: int):
    from napari_alma.learning.crops import extract_crops

    table = project.cell_table(slide_id, reader=reader)
    table = table[table["class"] != ""].drop(columns=["source", "probabilities"])
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
    logger.info("Slide %s: exporting %d labelled cells", slide_id, len(table))
    return table, crops
