"""Export a project's cells (GeoJSON, COCO, CSV, Parquet) and counts (differential CSV).

Exports are de-identified by default: a slide is named only by its pseudonymous id (derived
from the image content, see :meth:`Project.register_slide`). The file name and path, which
often carry a patient's name or record number, are written only when ``identify`` is set.
No scanner metadata is ever exported. Every file is written under a temporary name and
renamed into place, so an interrupted export leaves no partial file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from napari_alma.store.coco import write_coco
from napari_alma.store.geojson import write_geojson
from napari_alma.store.interchange import write_atomically
from napari_alma.store.project import Project

EXPORT_FORMATS = ("geojson", "coco", "csv", "parquet", "differential")

CELL_CSV_COLUMNS = [
    "slide_id", "cell_id", "row", "col", "row_um", "col_um", "class", "predicted_class",
    "confidence", "source", "label_source", "reader", "updated_at", "model_version",
    "probabilities",
]
"""Columns of the per-cell CSV and Parquet; ``probabilities`` is the model's class
probabilities as JSON text. With ``identify``, ``slide_file`` and ``slide_path`` follow."""

OUTPUT_NAMES = {"coco": "coco.json", "csv": "cells.csv", "parquet": "cells.parquet",
                "differential": "differential.csv"}


def slide_identity(slide: dict, identify: bool) -> dict:
    """Return the fields that name a slide in an export: its id, and its file on request."""
    identity = {"slide_id": slide["slide_id"]}
    if identify:
        identity.update(file_name=Path(slide["path"]).name, path=str(slide["path"]))
    return identity


def export_project(
    project: Project,
    file_format: str,
    out_dir: str | Path,
    reader: str | None = None,
    slides: list[str] | None = None,
    identify: bool = False,
    overwrite: bool = False,
) -> dict:
    """Export the cells (or counts) of a project's slides.

    Parameters
    ----------
    project : Project
        The project to export.
    file_format : str
        One of :data:`EXPORT_FORMATS`. GeoJSON writes ``<slide id>.geojson`` per slide;
        the others write one file (:data:`OUTPUT_NAMES`) for all slides.
    out_dir : str or Path
        Output folder, created when missing.
    reader : str, optional
        Export this reader's labels; by default each slide's primary reader's.
    slides : list of str, optional
        Slide ids to export; by default every slide of the project.
    identify : bool
        Also write each slide's file name and path (they may identify the patient).
    overwrite : bool
        Replace files that exist already.

    Returns
    -------
    dict
        ``format``, ``out``, ``files``, ``slides``, ``cells``, ``identified`` and
        ``left_out`` (cells COCO cannot hold because they have no class).
    """
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {file_format!r}; expected one of "
                         f"{', '.join(EXPORT_FORMATS)}.")
    out_dir = Path(out_dir)
    slide_ids = list(slides) if slides else list(project.slides()["slide_id"])
    rows = [project.slide(slide_id) for slide_id in slide_ids]
    targets = ([out_dir / f"{row['slide_id']}.geojson" for row in rows]
               if file_format == "geojson" else [out_dir / OUTPUT_NAMES[file_format]])
    _check_free(targets, overwrite)
    summary = {"format": file_format, "out": str(out_dir), "files": [str(t) for t in targets],
               "slides": len(rows), "cells": 0, "identified": identify, "left_out": 0}
    if file_format == "differential":
        frame = differential_frame(project, rows, identify)
        write_atomically(targets[0], lambda out: frame.to_csv(out, index=False))
        summary["cells"] = int(frame["count"].sum()) if len(frame) else 0
        return summary
    tables = [project.cell_table(row["slide_id"], reader=reader) for row in rows]
    summary["cells"] = sum(len(table) for table in tables)
    if file_format == "geojson":
        for row, table, target in zip(rows, tables, targets):
            write_geojson(table, row, project.scheme, target, slide_identity(row, identify))
    elif file_format == "coco":
        identities = [slide_identity(row, identify) for row in rows]
        _, summary["left_out"] = write_coco(list(zip(rows, tables, identities)),
                                            project.scheme, targets[0])
    else:
        _write_table(_cells_frame(rows, tables, identify), targets[0], file_format)
    return summary


def _check_free(targets: list[Path], overwrite: bool) -> None:
    existing = [str(target) for target in targets if target.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} already exist(s); choose another --out, or pass --overwrite "
            "to replace."
        )


def _cells_frame(rows: list[dict], tables: list[pd.DataFrame], identify: bool) -> pd.DataFrame:
    frames = []
    for row, table in zip(rows, tables):
        frame = table[CELL_CSV_COLUMNS].copy()
        if identify:
            frame["slide_file"] = Path(row["path"]).name
            frame["slide_path"] = str(row["path"])
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=CELL_CSV_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _write_table(frame: pd.DataFrame, target: Path, file_format: str) -> None:
    if file_format == "csv":
        write_atomically(target, lambda out: frame.to_csv(out, index=False))
    else:
        write_atomically(target, lambda out: frame.to_parquet(out, index=False,
                                                              engine="pyarrow"), binary=True)


def cells_frame(project: Project, reader: str | None = None) -> pd.DataFrame:
    """Return one row per cell of every slide, in the per-cell CSV's columns (de-identified).

    ``class`` is empty for a cell no reader has labelled; ``source`` is "model" or "added".
    """
    rows = [project.slide(slide_id) for slide_id in project.slides()["slide_id"]]
    tables = [project.cell_table(row["slide_id"], reader=reader) for row in rows]
    return _cells_frame(rows, tables, identify=False)


def differential_frame(
    project: Project, rows: list[dict] | None = None, identify: bool = False, **settings
) -> pd.DataFrame:
    """Return one row per slide and class: count, percent and its 95% interval."""
    if rows is None:
        rows = [project.slide(slide_id) for slide_id in project.slides()["slide_id"]]
    records = []
    for row in rows:
        differential = project.count(row["slide_id"], **settings)
        identity = {"slide_id": row["slide_id"]}
        if identify:
            identity["slide_file"] = Path(row["path"]).name
        for code, count in {**differential.counts, **differential.excluded}.items():
            low, high = differential.percent_ci95.get(code, (None, None))
            records.append({
                **identity, "class": code, "count": count,
                "counted_in_ndc": code in differential.counts,
                "percent": differential.percent.get(code), "ci95_low": low, "ci95_high": high,
                "total_counted": differential.total_counted,
                "blast_percent": differential.blast_percent, "me_ratio": differential.me_ratio,
                "unreviewed": differential.unreviewed,
            })
    return pd.DataFrame(records)


def write_cell_csv(project: Project, out_dir: Path, reader: str | None = None) -> Path:
    """Write ``cells.csv`` into ``out_dir``; return its path."""
    frame = cells_frame(project, reader)
    return write_atomically(Path(out_dir) / "cells.csv",
                            lambda out: frame.to_csv(out, index=False))


def write_differential_csv(project: Project, out_dir: Path, **settings) -> Path:
    """Write ``differential.csv`` into ``out_dir``; return its path."""
    frame = differential_frame(project, **settings)
    return write_atomically(Path(out_dir) / "differential.csv",
                            lambda out: frame.to_csv(out, index=False))
