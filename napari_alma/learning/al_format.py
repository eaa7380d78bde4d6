"""The active-learning export folder: labelled cell crops that ``train`` reads.

Layout of a folder ``DIR``::

    DIR/manifest.json   format, scheme, crop geometry, counts, attribution, generator
    DIR/cells.csv       one row per cell (columns in ``CELL_COLUMNS``)
    DIR/crops/...png    RGB crops, crop_px square, covering crop_um micrometres

``export --format al`` writes it with :func:`write_al_export`; ``train`` reads it with
:func:`read_al_export` and :func:`load_crops`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = "napari-alma-al"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TABLE_NAME = "cells.csv"
CELL_COLUMNS = (
    "crop", "slide_id", "cell_id", "row", "col", "row_um", "col_um", "class",
    "predicted_class", "source", "reader", "updated_at", "model_version", "weight", "split",
)
REQUIRED_COLUMNS = ("crop", "slide_id", "cell_id", "class")
SOURCES = ("model", "corrected", "added", "pseudo")
SPLITS = ("train", "val", "test", "")
MANIFEST_FIELDS = {
    "format": str, "format_version": int, "scheme": str, "scheme_version": int,
    "crop_um": (int, float), "crop_px": int, "n_cells": int, "class_counts": dict,
}


class ALFormatError(ValueError):
    """An active-learning export folder is missing a file or breaks the format."""


def write_al_export(out_dir, crops, table, manifest_extra: dict, overwrite: bool = False) -> Path:
    """Write crops, their cell table and the manifest as an active-learning export folder.

    Parameters
    ----------
    out_dir : str or Path
        The folder to create. It is written under a temporary sibling name and renamed
        into place, so a failed export leaves nothing behind.
    crops : (N, crop_px, crop_px, 3) uint8 array
        One crop per row of ``table``, in the same order.
    table : pandas.DataFrame
        N rows with at least the columns ``slide_id``, ``cell_id`` and ``class``; missing
        optional columns of ``CELL_COLUMNS`` are added empty (``weight`` as 1.0). The
        ``crop`` column is set to ``crops/<slide_id>/<cell_id>.png``.
    manifest_extra : dict
        Manifest fields: at least ``crop_um``; also ``scheme``, ``scheme_version``,
        ``attribution`` and anything else to record.
    overwrite : bool
        Replace an existing non-empty folder. Without it such a folder raises.

    Returns
    -------
    Path
        The written folder.

    Raises
    ------
    FileExistsError
        When ``out_dir`` exists, is not empty and ``overwrite`` is False.
    ALFormatError
        When the crops and the table do not match.
    """
    out_dir = Path(out_dir)
    crops = np.asarray(crops)
    _check_writable(out_dir, overwrite)
    table = _complete_table(table, crops)
    manifest = _build_manifest(table, crops, manifest_extra)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_contents(temp_dir, crops, table, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        temp_dir.rename(out_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    logger.info("Wrote active-learning export of %d cells to %s", len(table), out_dir)
    return out_dir


def _check_writable(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder; choose another --out.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} exists and is not empty; choose another folder, or replace it "
            "(--overwrite on the command line, overwrite=True in Python)."
        )


def _complete_table(table, crops: np.ndarray):
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
        raise ALFormatError(f"Expected crops of shape (N, px, px, 3); got {crops.shape}.")
    if len(table) != len(crops):
        raise ALFormatError(f"The table has {len(table)} rows but there are {len(crops)} crops.")
    missing = [column for column in ("slide_id", "cell_id", "class") if column not in table]
    if missing:
        raise ALFormatError(f"The cell table lacks the columns {', '.join(missing)}.")
    table = table.copy()
    for column in CELL_COLUMNS:
        if column not in table:
            table[column] = 1.0 if column == "weight" else ""
    table["crop"] = [
        f"crops/{_safe_name(slide)}/{_safe_name(cell)}.png"
        for slide, cell in zip(table["slide_id"], table["cell_id"])
    ]
    if table["crop"].duplicated().any():
        duplicate = table["crop"][table["crop"].duplicated()].iloc[0]
        raise ALFormatError(f"Two cells share the same slide_id and cell_id ({duplicate}).")
    return table[list(CELL_COLUMNS) + [c for c in table.columns if c not in CELL_COLUMNS]]


def _safe_name(value) -> str:
    text = str(value)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).lstrip(".") or "_"


def _build_manifest(table, crops: np.ndarray, extra: dict) -> dict:
    from napari_alma import __version__

    if "crop_um" not in extra:
        raise ALFormatError("manifest_extra needs 'crop_um', the crop side in micrometres.")
    counts = table["class"].fillna("").astype(str).value_counts()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scheme": "bone_marrow",
        "scheme_version": 1,
        "crop_px": int(crops.shape[1]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_cells": int(len(table)),
        "class_counts": {code: int(n) for code, n in sorted(counts.items()) if code},
        "generator": f"napari-alma {__version__}",
    }
    manifest.update(extra)
    manifest["crop_um"] = float(manifest["crop_um"])
    return manifest


def _write_contents(folder: Path, crops: np.ndarray, table, manifest: dict) -> None:
    from skimage import io

    for relative, crop in zip(table["crop"], crops):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        io.imsave(path, crop.astype(np.uint8), check_contrast=False)
    table.to_csv(folder / TABLE_NAME, index=False)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def read_al_export(folder):
    """Read and validate the manifest and the cell table of an active-learning export.

    Parameters
    ----------
    folder : str or Path
        An export folder written by :func:`write_al_export`.

    Returns
    -------
    manifest : dict
        The parsed ``manifest.json``.
    table : pandas.DataFrame
        ``cells.csv`` with ``class`` and ``split`` as strings ('' when empty) and
        ``weight`` as float (1.0 when empty).

    Raises
    ------
    ALFormatError
        Naming the file and the field that is missing or invalid.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ALFormatError(f"Active-learning export folder not found: {folder}")
    manifest = _read_manifest(folder / MANIFEST_NAME)
    table = _read_table(folder / TABLE_NAME)
    return manifest, table


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ALFormatError(
            f"{path} is missing; is this an export made with 'export --format al'?"
        ) from err
    except (OSError, json.JSONDecodeError) as err:
        raise ALFormatError(f"Cannot read {path}: {err}") from err
    if not isinstance(manifest, dict):
        raise ALFormatError(f"{path}: expected a JSON object.")
    for field, kind in MANIFEST_FIELDS.items():
        if field not in manifest:
            raise ALFormatError(f"{path}: field '{field}' is missing.")
        if not isinstance(manifest[field], kind) or isinstance(manifest[field], bool):
            raise ALFormatError(f"{path}: field '{field}' has invalid value {manifest[field]!r}.")
    if manifest["format"] != FORMAT:
        raise ALFormatError(
            f"{path}: field 'format' is {manifest['format']!r}; expected {FORMAT!r}."
        )
    if manifest["format_version"] > FORMAT_VERSION:
        raise ALFormatError(
            f"{path}: format_version {manifest['format_version']} is newer than this "
            f"napari-alma reads ({FORMAT_VERSION}); update napari-alma."
        )
    if manifest["crop_um"] <= 0 or manifest["crop_px"] <= 0:
        raise ALFormatError(f"{path}: 'crop_um' and 'crop_px' must be positive.")
    return manifest


def _read_table(path: Path):
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype={"slide_id": str, "cell_id": str}, keep_default_na=False)
    except FileNotFoundError as err:
        raise ALFormatError(f"{path} is missing; the export is incomplete.") from err
    except (OSError, ValueError) as err:
        raise ALFormatError(f"Cannot read {path}: {err}") from err
    missing = [column for column in REQUIRED_COLUMNS if column not in table]
    if missing:
        raise ALFormatError(f"{path}: column(s) {', '.join(missing)} missing.")
    table["class"] = table["class"].astype(str).str.strip()
    table["split"] = table["split"].astype(str).str.strip() if "split" in table else ""
    bad_split = sorted(set(table["split"]) - set(SPLITS))
    if bad_split:
        raise ALFormatError(
            f"{path}: column 'split' has {bad_split}; expected train, val, test or empty."
        )
    weight = table["weight"] if "weight" in table else 1.0
    table["weight"] = pd.to_numeric(weight, errors="coerce")
    table["weight"] = table["weight"].fillna(1.0).astype(float)
    if (table["weight"] < 0).any():
        raise ALFormatError(f"{path}: column 'weight' has negative values.")
    return table


def load_crops(folder, table) -> np.ndarray:
    """Load the crop images named in ``table['crop']``.

    Parameters
    ----------
    folder : str or Path
        The export folder; crop paths are relative to it.
    table : pandas.DataFrame
        Rows of ``cells.csv`` (all or a subset).

    Returns
    -------
    (N, h, w, 3) uint8 ndarray
        The crops in table order.

    Raises
    ------
    ALFormatError
        When a crop file is missing, unreadable, or differs in size from the first one.
    """
    from skimage import io

    folder = Path(folder)
    crops = []
    for relative in table["crop"]:
        path = folder / relative
        try:
            image = io.imread(path)
        except (OSError, ValueError) as err:
            raise ALFormatError(f"Cannot read crop {path}: {err}") from err
        crops.append(_as_rgb(image, path))
        if crops[-1].shape != crops[0].shape:
            raise ALFormatError(
                f"Crop {path} has shape {crops[-1].shape}; expected {crops[0].shape} "
                "like the other crops."
            )
    if not crops:
        return np.zeros((0, 1, 1, 3), dtype=np.uint8)
    return np.stack(crops)


def _as_rgb(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ALFormatError(f"Crop {path} has shape {image.shape}; expected an RGB image.")
    return image[..., :3].astype(np.uint8)
