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

# Crops per forward pass: a GPU holds far more than the CPU's caches profit from.
CPU_BATCH = 64
GPU_BATCH = 512

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
    bald_passes: int = 0,
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
        Level-0 pixel bounds to process, clipped to the slide; by default the whole slide.
    device : str
        "auto", "cpu", "cuda" or "mps".
    bald_passes : int
        When 2 or more, also score each cell with BALD from that many Monte-Carlo dropout
        passes (stored in the ``bald`` column of the predictions); 0 skips it.

    Returns
    -------
    dict
        ``slide_id``, ``new`` and ``matched`` cell ids, ``mpp``, ``mpp_estimated``,
        ``model_version``.
    """
    from napari_alma.learning.model import check_model_scheme, read_card
    from napari_alma.slides.reader import fingerprint

    slide = open_slide(slide_path)
    slide_id = project.register_slide(
        Path(slide_path).resolve(), fingerprint(slide_path), slide.shape, slide.mpp,
        "metadata" if slide.mpp else None,
    )
    model_dir = active_model_path(project, model_dir)
    check_model_scheme(read_card(model_dir), project.scheme, model_dir)
    mpp, estimated = _slide_mpp(project, slide_id, slide)
    result = analyse_slide(slide_path, model_dir, mpp=mpp, region=region, device=device,
                           bald_passes=bald_passes, progress=progress, cancel=cancel)
    return store_analysis(project, slide_id, result, mpp_estimated=estimated)


def analyse_slide(
    slide_path: str | Path,
    model_dir: str | Path,
    mpp: float | None = None,
    region: tuple[int, int, int, int] | None = None,
    device: str = "auto",
    bald_passes: int = 0,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Detect and classify the cells of a slide without touching any project.

    This is the part of :func:`predict_slide` that a worker of a cluster runs: it opens
    the slide itself and returns plain arrays, which the caller stores.

    Parameters
    ----------
    slide_path : str or Path
        The slide, readable where this runs.
    model_dir : str or Path
        The model folder, readable where this runs.
    mpp : float, optional
        Pixel size in µm/px; by default the file's, else estimated from a central tile.
    region, device, bald_passes, progress, cancel
        As for :func:`predict_slide`.

    Returns
    -------
    dict
        ``positions`` (N, 2) level-0 (row, col); ``probabilities`` (N, K);
        ``bald`` (N,) or None; ``classes``; ``model_version``; ``mpp``;
        ``mpp_estimated`` (True when estimated here); ``slide_path``.

    Raises
    ------
    MissingPixelSizeError
        When no pixel size is given, stated or estimable.
    PredictionCancelled
        When ``cancel`` returned True.
    """
    from napari_alma.learning.model import load_model, select_device

    slide = open_slide(slide_path)
    estimated = not mpp and not slide.mpp
    mpp = mpp or slide.mpp or _estimate_mpp(slide)
    model = load_model(model_dir)
    bounds = clip_region(region, slide.shape)
    positions = _detect_in_tiles(slide, mpp, bounds, progress, cancel)
    probabilities, bald = _classify(slide, positions, mpp, model, select_device(device),
                                    bald_passes)
    return {"positions": positions, "probabilities": probabilities, "bald": bald,
            "classes": model.classes, "model_version": model.version, "mpp": float(mpp),
            "mpp_estimated": estimated, "slide_path": str(slide_path)}


def store_analysis(project: Project, slide_id: str, result: dict,
                   mpp_estimated: bool | None = None) -> dict:
    """Store the output of :func:`analyse_slide` for ``slide_id``; return the summary.

    Returns
    -------
    dict
        ``slide_id``, ``new`` and ``matched`` cell ids, ``mpp``, ``mpp_estimated``,
        ``model_version``, ``bald`` (whether BALD scores were stored).
    """
    mpp = result["mpp"]
    stored = project.add_predictions(
        slide_id, result["positions"], result["probabilities"], result["classes"],
        result["model_version"], SAME_CELL_UM / mpp, bald=result["bald"],
    )
    estimated = result["mpp_estimated"] if mpp_estimated is None else mpp_estimated
    logger.info("Slide %s: %d new cells, %d re-classified with model %s",
                slide_id, len(stored["new"]), len(stored["matched"]), result["model_version"])
    return {"slide_id": slide_id, **stored, "mpp": mpp, "mpp_estimated": estimated,
            "model_version": result["model_version"], "bald": result["bald"] is not None}


def clip_region(region, shape) -> tuple[int, int, int, int]:
    """Return ``region`` (r0, c0, r1, c1) clipped to a slide of ``shape``; None: all of it.

    Raises
    ------
    ValueError
        When the clipped region is empty.
    """
    rows, cols = int(shape[0]), int(shape[1])
    if region is None:
        return (0, 0, rows, cols)
    r0, c0, r1, c1 = (int(round(v)) for v in region)
    clipped = (max(r0, 0), max(c0, 0), min(r1, rows), min(c1, cols))
    if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
        raise ValueError(
            f"Region {r0} {c0} {r1} {c1} lies outside the slide of {rows} x {cols} pixels; "
            "give R0 C0 R1 C1 in level-0 pixels inside it."
        )
    return clipped


def _slide_mpp(project: Project, slide_id: str, slide) -> tuple[float, bool]:
    """Return the slide's µm/px: stored, else estimated from a central tile and stored."""
    row = project.slide(slide_id)
    if row["mpp"]:
        return float(row["mpp"]), row["mpp_source"] == "estimated"
    mpp = _estimate_mpp(slide)
    project.set_mpp(slide_id, mpp, "estimated")
    return mpp, True


def _estimate_mpp(slide) -> float:
    """Estimate µm/px from the red cells of the slide's central tile."""
    from napari_alma.learning.detection import estimate_mpp

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
    return mpp


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


def _classify(slide, positions: np.ndarray, mpp: float, model, device: str,
              bald_passes: int = 0):
    """Return the probabilities (N, K) and, with ``bald_passes``, the BALD scores (N,)."""
    from napari_alma.learning.crops import extract_crops

    if len(positions) == 0:
        empty = np.empty((0, len(model.classes)), dtype=np.float32)
        return empty, (np.empty(0) if bald_passes else None)
    crops = extract_crops(slide.levels[0], positions, mpp, model.input_um, model.input_px)
    batch_size = GPU_BATCH if device != "cpu" else CPU_BATCH
    if bald_passes:
        return model.predict_with_bald(crops, passes=bald_passes, device=device,
                                       batch_size=batch_size)
    return model.predict(crops, device=device, batch_size=batch_size), None
