"""QuPath-compatible GeoJSON: one FeatureCollection of point detections per slide.

The layout follows what QuPath 0.4 and later writes and reads, as its GeoJSON adapter
(``PathObjectTypeAdapters`` in qupath-core, package ``qupath.lib.io``) implements it. A
feature's ``id`` is a UUID. Its ``properties`` contain ``objectType`` ("detection"),
``classification`` as ``{"name", "color": [r, g, b]}`` and ``measurements`` as a
name-to-number object. Files from QuPath before 0.4 give measurements as a list of
``{"name", "value"}``, which is also read here. QuPath takes coordinates in level-0 pixels with the
origin at the top-left corner of the image (QuPath docs, "Exporting annotations", 0.3), so
a cell at pixel (row, col) is the point [col + 0.5, row + 0.5].

QuPath keeps the UUID, the classification and the measurements of an object it imports and
drops other properties, so the cell id also travels as the measurement
:data:`CELL_ID_MEASUREMENT` and survives a pass through QuPath. The ``alma`` property
(slide id, exact position, label state, model version) and the collection's ``alma`` member
(a foreign member, RFC 7946 section 6.1) make a napari-alma round trip lossless.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd

from napari_alma.core.i18n import tr
from napari_alma.core.scheme import ClassScheme
from napari_alma.store.interchange import (
    check_number,
    exact_position,
    file_error,
    from_xy,
    hex_to_rgb,
    parse_probabilities,
    records_frame,
    to_xy,
    write_atomically,
)

CELL_ID_MEASUREMENT = "napari-alma cell id"
PROBABILITY_PREFIX = "Probability: "
# Fixed namespace, so a cell keeps its UUID from one export to the next.
UUID_NAMESPACE = uuid.UUID("5f1d3c52-8a0e-4c1b-9a63-2b7f4e8d9c10")


def write_geojson(
    table: pd.DataFrame, slide: dict, scheme: ClassScheme, path: Path, identity: dict
) -> Path:
    """Write a slide's cells (a :meth:`Project.cell_table`) as a GeoJSON FeatureCollection.

    ``identity`` contains what may name the slide: its pseudonymous id, plus the file name and
    path only when the user asked for them.
    """
    document = {
        "type": "FeatureCollection",
        "alma": {**identity, "rows": slide["rows"], "cols": slide["cols"], "mpp": slide["mpp"],
                 "scheme": scheme.name},
        "features": [_feature(cell, scheme) for cell in table.to_dict("records")],
    }
    return write_atomically(
        path, lambda out: out.write(json.dumps(document, ensure_ascii=False))
    )


def _feature(cell: dict, scheme: ClassScheme) -> dict:
    x, y = to_xy(cell["row"], cell["col"])
    probabilities = parse_probabilities(cell["probabilities"])
    measurements = {PROBABILITY_PREFIX + code: p for code, p in probabilities.items()}
    measurements[CELL_ID_MEASUREMENT] = int(cell["cell_id"])
    properties: dict = {"objectType": "detection"}
    displayed_class = cell["class"] or cell["predicted_class"]
    if displayed_class:
        properties["classification"] = {
            "name": displayed_class, "color": hex_to_rgb(scheme[displayed_class].color)}
    properties["measurements"] = measurements
    properties["alma"] = {
        "slide_id": cell["slide_id"], "cell_id": int(cell["cell_id"]),
        "row": float(cell["row"]), "col": float(cell["col"]), "class": cell["class"],
        "predicted_class": cell["predicted_class"], "model_version": cell["model_version"],
        "confidence": None if pd.isna(cell["confidence"]) else float(cell["confidence"]),
        "source": cell["source"], "reader": cell["reader"],
    }
    return {
        "type": "Feature",
        "id": str(uuid.uuid5(UUID_NAMESPACE, f"{cell['slide_id']}/{cell['cell_id']}")),
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": properties,
    }


def read_geojson(path: Path) -> tuple[pd.DataFrame, dict]:
    """Read the cells of a GeoJSON file as cell records, and the file's slide information.

    Accepts a FeatureCollection, a list of features or one feature; Point, one-point
    MultiPoint and Polygon geometries (a polygon's centroid is the cell's position).

    Raises
    ------
    AnnotationFileError
        Naming the feature and field of the first invalid value.
    """
    document = _load_json(path)
    features, slide_info = _features(document, path)
    records = [_record(feature, index, path) for index, feature in enumerate(features, 1)]
    file_slides = {record["slide_id"] for record in records} - {None}
    if slide_info.get("slide_id"):
        file_slides.add(slide_info["slide_id"])
    slide_info["slide_ids"] = sorted(file_slides)
    return records_frame(records), slide_info


def _load_json(path: Path) -> object:
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise file_error(path, tr("store_where_file"), "-",
                         tr("store_problem_not_json", error=err)) from err


def _features(document: object, path: Path) -> tuple[list, dict]:
    if isinstance(document, list):
        return document, {}
    if isinstance(document, dict) and document.get("type") == "Feature":
        return [document], {}
    if isinstance(document, dict) and isinstance(document.get("features"), list):
        alma = document.get("alma")
        return document["features"], dict(alma) if isinstance(alma, dict) else {}
    raise file_error(path, tr("store_where_file"), "type",
                     tr("store_problem_not_geojson"))


def _record(feature: object, index: int, path: Path) -> dict:
    where = tr("store_where_feature", index=index)
    if not isinstance(feature, dict):
        raise file_error(path, where, "-", tr("store_problem_wrong_type", expected="object"))
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise file_error(path, where, "properties",
                         tr("store_problem_wrong_type", expected="object"))
    alma = properties.get("alma") if isinstance(properties.get("alma"), dict) else {}
    measurements = _measurements(properties.get("measurements"), path, where)
    cell_id = alma.get("cell_id", measurements.pop(CELL_ID_MEASUREMENT, None))
    if cell_id is not None:
        where = tr("store_where_feature_cell", index=index, cell_id=cell_id)
    row, col = _position(feature.get("geometry"), path, where)
    code, labelled = _label(properties, alma, path, where)
    return {
        "where": where,
        "slide_id": alma.get("slide_id"),
        "cell_id": cell_id,
        "row": exact_position(alma.get("row"), row),
        "col": exact_position(alma.get("col"), col),
        "class": code,
        "labelled": labelled,
        "predicted_class": alma.get("predicted_class") or "",
        "model_version": alma.get("model_version") or "",
        "probabilities": {name[len(PROBABILITY_PREFIX):]: value
                          for name, value in measurements.items()
                          if name.startswith(PROBABILITY_PREFIX)},
        "confidence": alma.get("confidence"),
        "source": alma.get("source"),
    }


def _label(properties: dict, alma: dict, path: Path, where: str) -> tuple[str, bool | None]:
    """Return a feature's class and whether a reader gave it (None: unknown).

    ``classification.name`` is what QuPath and other tools show and edit, so it wins. The
    ``alma`` block, written by napari-alma, records only whether the class it shows was a
    reader's label or the model's prediction, which keeps an unreviewed cell unreviewed
    through a round trip. A name that differs from what the block says was shown is an
    edit made elsewhere, taken as a reader's label.
    """
    shown = _class_name(properties, path, where)
    if "class" not in alma:
        return shown, None
    stored = alma.get("class") or ""
    if shown == (stored or alma.get("predicted_class") or ""):
        return stored, bool(stored)
    return shown, True if shown else None


def _class_name(properties: dict, path: Path, where: str) -> str:
    classification = properties.get("classification")
    if classification is None:
        return ""
    if isinstance(classification, str):
        return classification
    if not isinstance(classification, dict) or not isinstance(classification.get("name"), str):
        raise file_error(path, where, "classification.name",
                         tr("store_problem_wrong_type", expected="text"))
    return classification["name"]


def _measurements(value: object, path: Path, where: str) -> dict[str, float]:
    """Return QuPath measurements (an object, or a list of name/value pairs) as a dict."""
    if value is None:
        return {}
    if isinstance(value, list):
        pairs = [(item.get("name"), item.get("value")) for item in value
                 if isinstance(item, dict)]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise file_error(path, where, "measurements",
                         tr("store_problem_wrong_type", expected="object"))
    measurements = {}
    for name, number in pairs:
        if isinstance(name, str) and (name.startswith(PROBABILITY_PREFIX)
                                      or name == CELL_ID_MEASUREMENT):
            measurements[name] = check_number(number, path, where, f"measurements.{name}")
    if CELL_ID_MEASUREMENT in measurements:
        measurements[CELL_ID_MEASUREMENT] = _whole_number(
            measurements[CELL_ID_MEASUREMENT], path, where)
    return measurements


def _whole_number(value: float, path: Path, where: str) -> int:
    if value != int(value):
        raise file_error(path, where, CELL_ID_MEASUREMENT,
                         tr("store_problem_wrong_type", expected="whole number"))
    return int(value)


def _position(geometry: object, path: Path, where: str) -> tuple[float, float]:
    """Return the (row, col) of a Point, one-point MultiPoint or Polygon geometry."""
    if not isinstance(geometry, dict):
        raise file_error(path, where, "geometry", tr("store_problem_missing"))
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "MultiPoint" and isinstance(coordinates, list) and len(coordinates) == 1:
        kind, coordinates = "Point", coordinates[0]
    if kind == "Point" and isinstance(coordinates, list) and len(coordinates) >= 2:
        x = check_number(coordinates[0], path, where, "geometry.coordinates[0]")
        y = check_number(coordinates[1], path, where, "geometry.coordinates[1]")
        return from_xy(x, y)
    if kind == "Polygon" and isinstance(coordinates, list) and coordinates:
        return from_xy(*_polygon_centroid(coordinates[0], path, where))
    raise file_error(path, where, "geometry.type",
                     tr("store_problem_geometry", kind=json.dumps(kind)))


def _polygon_centroid(ring: object, path: Path, where: str) -> tuple[float, float]:
    """Return the area centroid (x, y) of a polygon's exterior ring."""
    if not isinstance(ring, list) or len(ring) < 3:
        raise file_error(path, where, "geometry.coordinates",
                         tr("store_problem_wrong_type", expected="ring of 3+ points"))
    points = []
    for point in ring:
        if not isinstance(point, list) or len(point) < 2:
            raise file_error(path, where, "geometry.coordinates",
                             tr("store_problem_wrong_type", expected="[x, y]"))
        points.append((check_number(point[0], path, where, "geometry.coordinates"),
                       check_number(point[1], path, where, "geometry.coordinates")))
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if area == 0:
        return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
    return cx / (3 * area), cy / (3 * area)
