"""Import cells and labels from GeoJSON, COCO, CSV or Parquet into one slide of a project.

The whole file is read and checked first: types, classes, positions inside the slide,
duplicated ids and a file made for another slide. The first problem raises
:class:`~napari_alma.store.interchange.AnnotationFileError` naming the record and field.
Only then are the cells stored, in one transaction, so a file is imported whole or not at
all.

How a cell of the file is stored:

- It is an existing cell of the slide when it carries that cell's id at (within a pixel)
  that cell's position, or else when an existing cell lies within :data:`SAME_CELL_UM` of
  it (the distance ``predict`` treats as one cell). Its class becomes the importing
  reader's label only when it differs from what the cell shows now, so importing a file
  twice records nothing the second time.
- Otherwise it is a new cell, keeping the file's cell id when that id is free. A cell that
  comes with a model's prediction (class, probabilities and model version, as napari-alma
  writes them) is stored with source "model" and that prediction; any other cell gets
  source "added" and an ``add`` event. Imported cells reuse the two existing sources
  rather than a third one, so counts, exports and the schema stay as they are; the import
  is told apart in the audit trail by the importing reader and the one time shared by all
  of its events.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from napari_alma.core.i18n import tr
from napari_alma.store.cell_state import CellState, current_states
from napari_alma.store.coco import read_coco
from napari_alma.store.geojson import read_geojson
from napari_alma.store.interchange import PIXEL_CENTRE_OFFSET, AnnotationFileError, file_error
from napari_alma.store.labels import match_existing
from napari_alma.store.project import Project, default_reader, utc_now
from napari_alma.store.signoff import check_writable
from napari_alma.store.tables import read_cell_table

IMPORT_FORMATS = ("geojson", "coco", "csv", "parquet")
SAME_CELL_UM = 5.0
SAME_ID_PX = 1.0
"""A file's cell id names an existing cell only if the positions agree within this, in px."""

SUFFIX_FORMATS = {".geojson": "geojson", ".csv": "csv", ".parquet": "parquet",
                  ".pq": "parquet"}
CLASS_FIELDS = {"geojson": "properties.classification.name", "coco": "category_id"}
POSITION_FIELDS = {
    "geojson": {"row": "geometry.coordinates[1] (y)", "col": "geometry.coordinates[0] (x)"},
    "coco": {"row": "bbox centre y", "col": "bbox centre x"},
}


def import_annotations(
    project: Project,
    slide_id: str,
    path: str | Path,
    file_format: str | None = None,
    reader: str | None = None,
    ignore_slide_id: bool = False,
) -> dict:
    """Import the cells of one annotation file into a slide, in one transaction.

    Parameters
    ----------
    project : Project
        The project holding the slide.
    slide_id : str
        The slide the cells belong to.
    path : str or Path
        A GeoJSON, COCO, CSV or Parquet file.
    file_format : str, optional
        One of :data:`IMPORT_FORMATS`; by default taken from the file's extension (a
        ``.json`` file is COCO when it has ``images``, else GeoJSON).
    reader : str, optional
        The reader recorded with every event (default: the operating-system user).
    ignore_slide_id : bool
        Import even when the file names another slide (a re-scanned smear, say).

    Returns
    -------
    dict
        Counts: ``cells_in_file``, ``added``, ``labelled``, ``unchanged``,
        ``skipped_other_slides``, with ``slide_id``, ``format`` and ``reader``.

    Raises
    ------
    AnnotationFileError
        When any value of the file is invalid; nothing is stored then.
    """
    path = Path(path)
    file_format = detect_format(path, file_format)
    slide = project.slide(slide_id)
    records, skipped = _slide_records(path, file_format, slide, ignore_slide_id)
    _check_records(records, slide, project, path, file_format)
    reader = reader or default_reader()
    counts = _store(project, slide, records, reader)
    return {"slide_id": slide_id, "format": file_format, "reader": reader,
            "cells_in_file": len(records), **counts, "skipped_other_slides": skipped}


def detect_format(path: Path, file_format: str | None) -> str:
    """Return the format named, or the one the file's extension (or content) implies."""
    if file_format:
        if file_format not in IMPORT_FORMATS:
            raise ValueError(tr("store_unknown_format", value=file_format,
                                formats=", ".join(IMPORT_FORMATS)))
        return file_format
    if not path.is_file():
        raise FileNotFoundError(tr("store_import_missing", file=path))
    suffix = path.suffix.lower()
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    if suffix == ".json":
        with open(path, encoding="utf-8", errors="replace") as stream:
            head = stream.read(1 << 16)
        return "coco" if '"images"' in head and '"annotations"' in head else "geojson"
    raise ValueError(tr("store_unknown_suffix", file=path, formats=", ".join(IMPORT_FORMATS)))


# -- choosing the slide's records ---------------------------------------------------------
def _slide_records(
    path: Path, file_format: str, slide: dict, ignore_slide_id: bool
) -> tuple[pd.DataFrame, int]:
    """Return the records of ``slide`` in the file and how many records of others it skipped."""
    if file_format == "geojson":
        records, info = read_geojson(path)
        if not ignore_slide_id:
            _check_geojson_slide(path, info, slide)
        return records, 0
    if file_format == "coco":
        return _coco_image(path, slide, ignore_slide_id), 0
    records = read_cell_table(path, file_format)
    if ignore_slide_id:
        return records, 0
    ours = records["slide_id"].isna() | (records["slide_id"] == slide["slide_id"])
    if len(records) and not ours.any():
        raise _other_slide(path, slide, sorted(set(records["slide_id"])))
    return records[ours].reset_index(drop=True), int((~ours).sum())


def _check_geojson_slide(path: Path, info: dict, slide: dict) -> None:
    named = info["slide_ids"]
    if named and named != [slide["slide_id"]]:
        raise _other_slide(path, slide, named)
    file_name = info.get("file_name")
    if not named and file_name and file_name != Path(slide["path"]).name:
        raise _other_slide(path, slide, [file_name])


def _coco_image(path: Path, slide: dict, ignore_slide_id: bool) -> pd.DataFrame:
    images = read_coco(path)
    ours = [(image, records) for image, records in images
            if image.get("alma_slide_id") == slide["slide_id"]
            or image.get("file_name") in (slide["slide_id"], Path(slide["path"]).name)]
    if not ours and (len(images) == 1 and (ignore_slide_id or not images[0][0].get(
            "alma_slide_id"))):
        ours = images
    if not ours:
        raise _other_slide(path, slide, [str(image.get("alma_slide_id") or
                                             image.get("file_name")) for image, _ in images])
    image, records = ours[0]
    size = (image.get("height"), image.get("width"))
    if not ignore_slide_id and slide["rows"] and size != (slide["rows"], slide["cols"]):
        raise file_error(path, tr("store_where_image", index=image.get("id")),
                         "width, height", tr("store_problem_size", width=size[1],
                                             height=size[0], cols=slide["cols"],
                                             rows=slide["rows"]))
    return records


def _other_slide(path: Path, slide: dict, named: list) -> AnnotationFileError:
    return AnnotationFileError(tr("store_import_other_slide", file=path,
                                  named=", ".join(map(str, named)), slide=slide["slide_id"]))


# -- checking -----------------------------------------------------------------------------
def _check_records(
    records: pd.DataFrame, slide: dict, project: Project, path: Path, file_format: str
) -> None:
    class_field = CLASS_FIELDS.get(file_format, "class")
    for record in records.to_dict("records"):
        _check_class(record["class"], project, path, record["where"], class_field)
        _check_class(record["predicted_class"], project, path, record["where"],
                     "predicted_class")
        _check_probabilities(record, project, path)
        _check_inside(record, slide, path, file_format)
    _check_unique_ids(records, path)


def _check_class(code: object, project: Project, path: Path, where: str, field: str) -> None:
    if not isinstance(code, str):
        raise file_error(path, where, field, tr("store_problem_wrong_type", expected="text"))
    if code and code not in project.scheme:
        raise file_error(path, where, field, tr(
            "store_problem_unknown_class", code=code, scheme=project.scheme.name,
            codes=", ".join(project.scheme.codes)))


def _check_probabilities(record: dict, project: Project, path: Path) -> None:
    if not isinstance(record["probabilities"], dict):
        raise file_error(path, record["where"], "probabilities",
                         tr("store_problem_wrong_type", expected="object"))
    for code, value in record["probabilities"].items():
        field = f"probabilities.{code}"
        _check_class(code, project, path, record["where"], field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 <= value <= 1:
            raise file_error(path, record["where"], field,
                             tr("store_problem_probability", value=json.dumps(value)))


def _check_inside(record: dict, slide: dict, path: Path, file_format: str) -> None:
    """Reject a position outside the slide's level-0 pixels (centres at whole numbers).

    The error names the field and value as the file has them: x and y, corner origin, in
    GeoJSON and COCO; row and col, centre origin, in the tables.
    """
    for axis, size in (("row", slide["rows"]), ("col", slide["cols"])):
        value = record[axis]
        if size and not -0.5 <= value < size - 0.5:
            field, shown = POSITION_FIELDS.get(file_format, {}).get(axis, axis), value
            if file_format in POSITION_FIELDS:
                shown = value + PIXEL_CENTRE_OFFSET
            raise file_error(path, record["where"], field, tr(
                "store_problem_outside", value=f"{shown:g}", size=size,
                rows=slide["rows"], cols=slide["cols"]))


def _check_unique_ids(records: pd.DataFrame, path: Path) -> None:
    seen: dict = {}
    for record in records.to_dict("records"):
        cell_id = record["cell_id"]
        if cell_id is None or (isinstance(cell_id, float) and np.isnan(cell_id)):
            continue
        if isinstance(cell_id, bool) or not isinstance(cell_id, (int, np.integer)):
            raise file_error(path, record["where"], "cell_id",
                             tr("store_problem_wrong_type", expected="whole number"))
        if cell_id in seen:
            raise file_error(path, record["where"], "cell_id", tr(
                "store_problem_duplicate_id", value=cell_id, other=seen[cell_id]))
        seen[cell_id] = record["where"]


# -- storing ------------------------------------------------------------------------------
def _store(project: Project, slide: dict, records: pd.DataFrame, reader: str) -> dict:
    counts = {"added": 0, "labelled": 0, "unchanged": 0}
    if records.empty:
        return counts
    slide_id = slide["slide_id"]
    now = utc_now()
    with project.transaction() as db:
        existing = pd.read_sql_query(
            "SELECT cell_id, row, col FROM cells WHERE slide_id=?", db, params=(slide_id,))
        matches = _match(records, existing, project, slide)
        check_writable(db, slide_id)
        states = current_states(db, slide_id, sorted(set(matches) - {None}), reader)
        new_ids = _new_ids(records, matches, existing)
        for record, match, new_id in zip(records.to_dict("records"), matches, new_ids):
            if match is None:
                _insert_cell(db, slide_id, new_id, record, reader, now)
                counts["added"] += 1
            elif _label_if_changed(db, slide_id, match, record, states[match], reader, now):
                counts["labelled"] += 1
            else:
                counts["unchanged"] += 1
        project._claim_primary_reader(db, slide_id, reader)
    return counts


def _match(records: pd.DataFrame, existing: pd.DataFrame, project: Project,
           slide: dict) -> list:
    """Return, per record, the existing cell it is, or None for a new cell."""
    positions = existing.set_index("cell_id")
    matches: list = [None] * len(records)
    for index, record in enumerate(records.to_dict("records")):
        cell_id = record["cell_id"]
        if cell_id in positions.index:
            row, col = positions.loc[cell_id, ["row", "col"]]
            if np.hypot(row - record["row"], col - record["col"]) <= SAME_ID_PX:
                matches[index] = int(cell_id)
    if not slide["mpp"]:
        return matches
    free = existing[~existing["cell_id"].isin(set(matches) - {None})
                    & ~existing["cell_id"].isin(_deleted(project, slide["slide_id"]))]
    unmatched = [i for i, match in enumerate(matches) if match is None]
    nearest = match_existing(free.reset_index(drop=True),
                             records.loc[unmatched, ["row", "col"]].to_numpy(float),
                             SAME_CELL_UM / slide["mpp"])
    for index, match in zip(unmatched, nearest):
        matches[index] = match
    return matches


def _deleted(project: Project, slide_id: str) -> set[int]:
    events = project.events(slide_id)
    deletions = events[events["action"].isin(("delete", "restore"))]
    last = deletions.groupby("cell_id").tail(1)
    return set(last.loc[last["action"] == "delete", "cell_id"])


def _new_ids(records: pd.DataFrame, matches: list, existing: pd.DataFrame) -> list:
    """Return the id of each new cell: the file's id when free, else the next free id."""
    used_ids = set(existing["cell_id"])
    ids: list = [None] * len(records)
    for index, (cell_id, match) in enumerate(zip(records["cell_id"], matches)):
        if match is None and isinstance(cell_id, (int, np.integer)) and cell_id > 0 \
                and cell_id not in used_ids:
            ids[index] = int(cell_id)
            used_ids.add(int(cell_id))
    next_id = max(used_ids, default=0) + 1
    for index, match in enumerate(matches):
        if match is None and ids[index] is None:
            ids[index], next_id = next_id, next_id + 1
    return ids


def _insert_cell(db, slide_id: str, cell_id: int, record: dict, reader: str, now: str) -> None:
    prediction = _prediction(record)
    source = "added" if prediction is None or record.get("source") == "added" else "model"
    db.execute("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?)",
               (slide_id, cell_id, record["row"], record["col"], source, now))
    if prediction is not None:
        db.execute(
            "INSERT OR IGNORE INTO predictions (slide_id, cell_id, model_version, class,"
            " confidence, probabilities, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (slide_id, cell_id, record["model_version"], record["predicted_class"],
             *prediction, now))
    code = record["class"] or None
    if source == "added":
        _event(db, slide_id, cell_id, reader, now, "add", None, code, None)
    elif code and (record["labelled"] or code != record["predicted_class"]):
        _event(db, slide_id, cell_id, reader, now, "label", None, code,
               record["model_version"])


def _prediction(record: dict) -> tuple[float, str] | None:
    """Return (confidence, probabilities JSON) when the record carries a whole prediction."""
    predicted, probabilities = record["predicted_class"], record["probabilities"]
    if not (predicted and record["model_version"] and predicted in probabilities):
        return None
    confidence = record["confidence"]
    if not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        confidence = probabilities[predicted]
    return float(confidence), json.dumps(probabilities, ensure_ascii=False)


def _label_if_changed(db, slide_id: str, cell_id: int, record: dict, state: CellState,
                      reader: str, now: str) -> bool:
    code = record["class"]
    current = state.label
    displayed_class = state.shown
    if not code or record["labelled"] is False:
        return False
    if code == current or (record["labelled"] is None and code == displayed_class):
        return False
    _event(db, slide_id, cell_id, reader, now, "label", current or None, code,
           state.model_version or None)
    return True


def _event(db, slide_id, cell_id, reader, now, action, old, new, model_version) -> None:
    db.execute(
        "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class, new_class,"
        " model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (slide_id, int(cell_id), reader, now, action, old, new, model_version),
    )
