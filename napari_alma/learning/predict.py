"""Detect and classify the cells of a slide, tile by tile, and store them in a project."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from napari_alma.slides.reader import open_slide
from napari_alma.store.project import Project

logger = logging.getLogger(__name__)

TILE_PX = 2048
# Two detections closer than this are one cell: about half a small leukocyte's diameter.
SAME_CELL_UM = 5.0
# Tiles overlap by a large cell's diameter, so a cell cut by one tile edge lies whole in
# the neighbouring tile. Each tile keeps only the cells whose centre is in its own core.
TILE_OVERLAP_UM = 30.0

Progress = Callable[[float, str], None]


class PredictionCancelled(Exception):
    """The user cancelled a prediction; what was stored before stays stored."""


class MissingPixelSizeError(ValueError):
    """A slide states no pixel size and none could be estimated from its red cells."""


def active_model_path(project: Project, model_dir: str | Path | None = None) -> Path:
    """Return the model folder to use: ``model_dir``, else the project's active model.

    The project's active model is its ``active_model`` setting, else the shipped default.
    """
    from napari_alma.learning.model import default_model_path

    chosen = model_dir or project.get_meta("active_model")
    return Path(chosen) if chosen else default_model_path()


def predict_slide(
    project: Project,
    slide_path: str | Path,
    model_dir: str | Path | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    region: tuple[int, int, int, int] | None = None,
    device: str = "auto",
) -> dict:
    """Detect the nucleated cells of a slide, classify them and store both in ``project``.

    Predicting again re-classifies the cells already stored: each gets a new prediction
    row for the new model version, and human labels stay untouched. A new cell is added
    only where no stored cell lies within ``SAME_CELL_UM``.

    Parameters
    ----------
    project : Project
        Where the slide, its cells and predictions are stored.
    slide_path : str or Path
        Any image that :func:`napari_alma.slides.reader.open_slide` reads.
    model_dir : str or Path, optional
        A model folder; by default the project's active model.
    progress : callable(fraction, message), optional
        Called after each tile.
    cancel : callable() -> bool, optional
        Checked before each tile; when it returns True, :class:`PredictionCancelled` is raised.
    region : (r0, c0, r1, c1), optional
        Level-0 pixel bounds to process; by default the whole slide.
    device : str
        "auto", "cpu", "cuda" or "mps".

    Returns
    -------
    dict
        ``slide_id``, ``new`` and ``matched`` cell ids, ``mpp``, ``mpp_estimated``,
        ``model_version``.
    """
    from napari_alma.learning.model import load_model, select_device
    from napari_alma.slides.reader import fingerprint

    slide = open_slide(slide_path)
    slide_id = project.register_slide(
        Path(slide_path).resolve(), fingerprint(slide_path), slide.shape, slide.mpp,
        "metadata" if slide.mpp else None,
    )
    model = load_model(active_model_path(project, model_dir), scheme=project.scheme)
    mpp, estimated = _slide_mpp(project, slide_id, slide)
    positions = _detect_in_tiles(slide, mpp, region or (0, 0, *slide.shape), progress, cancel)
    probabilities = _classify(slide, positions, mpp, model, select_device(device))
    stored = project.add_predictions(
        slide_id, positions, probabilities, model.classes, model.version, SAME_CELL_UM / mpp
    )
    logger.info("Slide %s: %d new cells, %d re-classified with model %s",
                slide_id, len(stored["new"]), len(stored["matched"]), model.version)
    return {"slide_id": slide_id, **stored, "mpp": mpp, "mpp_estimated": estimated,
            "model_version": model.version}


def _slide_mpp(project: Project, slide_id: str, slide) -> tuple[float, bool]:
    """Return the slide's µm/px: stored, else estimated from a central tile and stored."""
    from napari_alma.learning.detection import estimate_mpp

    row = project.slide(slide_id)
    if row["mpp"]:
        return float(row["mpp"]), row["mpp_source"] == "estimated"
    rows, cols = slide.shape
    centre_r, centre_c = rows // 2, cols // 2
    half = TILE_PX // 2
    tile = slide.read_region(centre_r - half, centre_c - half, centre_r + half, centre_c + half)
    mpp = estimate_mpp(tile)
    if mpp is None:
        raise MissingPixelSizeError(
            f"{slide.path}: the file has no pixel size and none could be estimated from its "
            "red cells. Set it with `napari-alma predict SLIDE --mpp VALUE` (µm per pixel)."
        )
    project.set_mpp(slide_id, mpp, "estimated")
    return mpp, True


def _tiles(region: tuple[int, int, int, int], overlap: int):
    """Yield (core, padded) level-0 bounds of the tiles covering ``region``."""
    r0, c0, r1, c1 = region
    for top in range(r0, r1, TILE_PX):
        for left in range(c0, c1, TILE_PX):
            core = (top, left, min(top + TILE_PX, r1), min(left + TILE_PX, c1))
            padded = (max(core[0] - overlap, r0), max(core[1] - overlap, c0),
                      min(core[2] + overlap, r1), min(core[3] + overlap, c1))
            yield core, padded


def _detect_in_tiles(slide, mpp, region, progress, cancel) -> np.ndarray:
    from napari_alma.learning.detection import detect_cells

    overlap = int(np.ceil(TILE_OVERLAP_UM / mpp))
    tiles = list(_tiles(region, overlap))
    found = []
    for index, (core, padded) in enumerate(tiles):
        if cancel is not None and cancel():
            raise PredictionCancelled(f"Prediction cancelled after {index} of {len(tiles)} tiles.")
        image = slide.read_region(*padded)
        detections = detect_cells(image, mpp=mpp)
        positions = detections.positions + np.array(padded[:2], dtype=float)
        inside = ((positions[:, 0] >= core[0]) & (positions[:, 0] < core[2])
                  & (positions[:, 1] >= core[1]) & (positions[:, 1] < core[3]))
        found.append(positions[inside])
        if progress is not None:
            progress((index + 1) / len(tiles), f"tile {index + 1}/{len(tiles)}")
    return np.concatenate(found) if found else np.empty((0, 2))


def _classify(slide, positions: np.ndarray, mpp: float, model, device: str) -> np.ndarray:
    from napari_alma.learning.crops import extract_crops

    if len(positions) == 0:
        return np.empty((0, len(model.classes)), dtype=np.float32)
    crops = extract_crops(slide.levels[0], positions, mpp, model.input_um, model.input_px)
    return model.predict(crops, device=device)
