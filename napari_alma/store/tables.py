"""Reading the per-cell tables (CSV and Parquet) back as cell records.

The tables are the ones ``export --format csv|parquet`` writes (see
:mod:`napari_alma.store.exports`): ``row`` and ``col`` in level-0 pixels with pixel centres
at whole numbers, ``class`` empty for an unreviewed cell. Only ``row`` and ``col`` are
required, so a table made by another program imports too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from napari_alma.core.i18n import tr
from napari_alma.store.interchange import file_error, records_frame

REQUIRED_COLUMNS = ("row", "col")


def read_cell_table(path: Path, table_format: str) -> pd.DataFrame:
    """Read a per-cell CSV or Parquet file as cell records.

    Raises
    ------
    AnnotationFileError
        Naming the line (CSV) or row (Parquet) and the column of the first invalid value.
    """
    frame = _load(path, table_format)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise file_error(path, tr("store_where_file"), ", ".join(missing),
                         tr("store_problem_missing_column"))
    # Line 1 of a CSV file is its header.
    first = 2 if table_format == "csv" else 1
    key = "store_where_line" if table_format == "csv" else "store_where_row"
    records = [_record(values, tr(key, index=first + index), path)
               for index, values in enumerate(frame.to_dict("records"))]
    return records_frame(records)


def _load(path: Path, table_format: str) -> pd.DataFrame:
    try:
        if table_format == "csv":
            # Read every cell as text, so a wrong type is reported here with its line.
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        return pd.read_parquet(path).astype(object)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise file_error(path, tr("store_where_file"), "-",
                         tr("store_problem_unreadable", format=table_format, error=err)) from err


def _record(values: dict, where: str, path: Path) -> dict:
    text = {key: _text(value) for key, value in values.items()}
    probabilities = text.get("probabilities", "")
    return {
        "where": where,
        "slide_id": text.get("slide_id") or None,
        "cell_id": _cell_id(values.get("cell_id"), where, path),
        "row": _number(values["row"], "row", where, path),
        "col": _number(values["col"], "col", where, path),
        "class": text.get("class", ""),
        "labelled": bool(text.get("class")),
        "predicted_class": text.get("predicted_class", ""),
        "model_version": text.get("model_version", ""),
        "probabilities": _probabilities(probabilities, where, path) if probabilities else {},
        "confidence": _number(text["confidence"], "confidence", where, path)
        if text.get("confidence") else None,
        "source": text.get("source") or None,
    }


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _number(value: object, column: str, where: str, path: Path) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise file_error(path, where, column, tr(
            "store_problem_not_number", value=json.dumps(_text(value)))) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise file_error(path, where, column, tr("store_problem_not_finite", value=value))
    return number


def _cell_id(value: object, where: str, path: Path) -> int | None:
    if _text(value) == "":
        return None
    number = _number(value, "cell_id", where, path)
    if number != int(number):
        raise file_error(path, where, "cell_id",
                         tr("store_problem_wrong_type", expected="whole number"))
    return int(number)


def _probabilities(text: str, where: str, path: Path) -> dict:
    try:
        probabilities = json.loads(text)
    except json.JSONDecodeError as err:
        raise file_error(path, where, "probabilities",
                         tr("store_problem_not_json", error=err)) from err
    if not isinstance(probabilities, dict):
        raise file_error(path, where, "probabilities",
                         tr("store_problem_wrong_type", expected="object"))
    return probabilities
