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

# Crops per forward pass: a GPU runs far larger batches efficiently than a CPU does.
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
    with local_dask():
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
    with local_dask():
        return _analyse(slide_path, model_dir, mpp, region, device, bald_passes, progress,
                        cancel)


def _analyse(slide_path, model_dir, mpp, region, device, bald_passes, progress, cancel) -> dict:
    from napari_alma.learning.model import load_model, select_device

    slide = open_slide(slide_path)
    estimated = not mpp and not slide.mpp
    mpp = mpp or slide.mpp or _estimate_mpp(slide)
    model = load_model(model_dir)
    bounds = clip_region(region, slide.shape)
    classifier = _BatchClassifier(model, select_device(device), bald_passes)
    positions = _detect_in_tiles(slide, mpp, bounds, classifier, progress, cancel)
    probabilities, bald = classifier.finish()
    return {"positions": positions, "probabilities": probabilities, "bald": bald,
            "classes": model.classes, "model_version": model.version, "mpp": float(mpp),
            "mpp_estimated": estimated, "slide_path": str(slide_path)}


def local_dask():
    """Return a context in which dask computes slide reads with local threads.

    The slide's lazy arrays hold file handles and locks, which cannot be sent to a
    dask.distributed scheduler. A Client in this process (or the worker this runs on)
    becomes dask's default scheduler, so every slide read here opts out of it.
    """
    import dask

    return dask.config.set(scheduler="threads")


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


def _tiles(region: tuple[int, int, int, int], overlap: int, shape):
    """Yield (core, padded) level-0 bounds of the tiles covering ``region``.

    Cores tile the region; each padded tile adds ``overlap`` pixels around its core,
    clipped to the slide (``shape``) rather than to the region, so a cell at the region's
    edge is detected and cropped with its surroundings.
    """
    r0, c0, r1, c1 = region
    rows, cols = int(shape[0]), int(shape[1])
    for top in range(r0, r1, TILE_PX):
        for left in range(c0, c1, TILE_PX):
            core = (top, left, min(top + TILE_PX, r1), min(left + TILE_PX, c1))
            padded = (max(core[0] - overlap, 0), max(core[1] - overlap, 0),
                      min(core[2] + overlap, rows), min(core[3] + overlap, cols))
            yield core, padded


def tile_overlap_px(mpp: float, crop_um: float) -> int:
    """Return the tile overlap in pixels: ``TILE_OVERLAP_UM``, or half a crop if larger.

    A cell kept by a tile lies in its core, so with this overlap its whole crop lies in
    the padded tile, and crops are cut from the tile in memory, never read again.
    """
    return int(np.ceil(max(TILE_OVERLAP_UM, crop_um / 2 + mpp) / mpp))


def _detect_in_tiles(slide, mpp, region, classifier, progress, cancel) -> np.ndarray:
    """Detect the cells tile by tile and hand their crops to ``classifier``."""
    from napari_alma.learning.crops import extract_crops
    from napari_alma.learning.detection import detect_cells

    model = classifier.model
    tiles = list(_tiles(region, tile_overlap_px(mpp, model.input_um), slide.shape))
    found = []
    for index, (core, padded) in enumerate(tiles):
        if cancel is not None and cancel():
            raise PredictionCancelled(f"Prediction cancelled after {index} of {len(tiles)} tiles.")
        image = slide.read_region(*padded)
        local = detect_cells(image, mpp=mpp).positions
        positions = local + np.array(padded[:2], dtype=float)
        inside = ((positions[:, 0] >= core[0]) & (positions[:, 0] < core[2])
                  & (positions[:, 1] >= core[1]) & (positions[:, 1] < core[3]))
        found.append(positions[inside])
        if inside.any():
            classifier.add(extract_crops(image, local[inside], mpp, model.input_um,
                                         model.input_px))
        if progress is not None:
            progress((index + 1) / len(tiles), f"tile {index + 1}/{len(tiles)}")
    return np.concatenate(found) if found else np.empty((0, 2))


class _BatchClassifier:
    """Collect crops from the tiles and classify them in batches as they fill up.

    Batches span tiles, so the accelerator gets full batches, and at most one batch of
    crops waits in memory.
    """

    def __init__(self, model, device: str, bald_passes: int = 0):
        self.model = model
        self.device = device
        self.bald_passes = bald_passes
        self.batch_size = CPU_BATCH if device == "cpu" else GPU_BATCH
        self._pending: list[np.ndarray] = []
        self._waiting = 0
        self._probabilities: list[np.ndarray] = []
        self._bald: list[np.ndarray] = []

    def add(self, crops: np.ndarray) -> None:
        """Queue (N, px, px, 3) crops, and classify the queue once it contains a full batch."""
        self._pending.append(crops)
        self._waiting += len(crops)
        if self._waiting >= self.batch_size:
            self._flush()

    def finish(self):
        """Classify what is left; return probabilities (N, K) and BALD (N,) or None."""
        self._flush()
        n_classes = len(self.model.classes)
        probabilities = (np.concatenate(self._probabilities) if self._probabilities
                         else np.empty((0, n_classes), dtype=np.float32))
        if not self.bald_passes:
            return probabilities, None
        return probabilities, (np.concatenate(self._bald) if self._bald else np.empty(0))

    def _flush(self) -> None:
        if not self._waiting:
            return
        crops = np.concatenate(self._pending)
        self._pending, self._waiting = [], 0
        if self.bald_passes:
            probabilities, bald = self.model.predict_with_bald(
                crops, passes=self.bald_passes, device=self.device, batch_size=self.batch_size)
            self._bald.append(bald)
        else:
            probabilities = self.model.predict(crops, device=self.device,
                                               batch_size=self.batch_size)
        self._probabilities.append(probabilities)
