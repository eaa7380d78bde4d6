"""COCO object detection: one JSON file with every slide as an image and a box per cell.

Boxes are ``[x, y, width, height]`` in level-0 pixels with the COCO pixel convention, whose
origin is the top-left corner of the top-left pixel. Pixel (row, col) covers
[col, col + 1) x [row, row + 1), and its centre is (col + 0.5, row + 0.5). Each box is a
square of :data:`~napari_alma.store.interchange.CELL_BOX_UM` µm centred on the cell.
Categories follow the class scheme's order with ids from 1, so an id means the same class in
every export of a scheme. A cell with neither a label nor a prediction has no category and
is left out (the export summary counts it).

Fields named ``alma_*`` carry what COCO has no place for (cell id, exact position, label
state, prediction); other tools ignore them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from napari_alma import __version__
from napari_alma.core.i18n import tr
from napari_alma.core.scheme import ClassScheme
from napari_alma.store.interchange import (
    box_side_px,
    check_number,
    exact_position,
    file_error,
    from_xy,
    parse_probabilities,
    records_frame,
    to_xy,
    write_atomically,
)


def coco_categories(scheme: ClassScheme) -> list[dict]:
    """Return the COCO categories of a scheme: ids from 1 in scheme order."""
    return [{"id": number, "name": cell_class.code, "supercategory": cell_class.lineage,
             "alma_name_en": cell_class.en, "alma_name_es": cell_class.es}
            for number, cell_class in enumerate(scheme.classes, 1)]


def write_coco(
    slides: list[tuple[dict, pd.DataFrame, dict]], scheme: ClassScheme, path: Path
) -> tuple[Path, int]:
    """Write slides and their cells as one COCO file.

    Parameters
    ----------
    slides : list of (slide row, cell table, identity)
        ``identity`` contains the slide's pseudonymous id, plus its file name and path only
        when the user asked for them.

    Returns
    -------
    (Path, int)
        The written file and the number of cells left out for having no class.
    """
    category_ids = {category["name"]: category["id"] for category in coco_categories(scheme)}
    images, annotations, left_out = [], [], 0
    for image_id, (slide, table, identity) in enumerate(slides, 1):
        images.append(_image(image_id, slide, identity))
        side = box_side_px(slide["mpp"])
        for cell in table.to_dict("records"):
            displayed_class = cell["class"] or cell["predicted_class"]
            if not displayed_class:
                left_out += 1
                continue
            annotations.append(_annotation(len(annotations) + 1, image_id, cell,
                                           category_ids[displayed_class], side))
    document = {
        "info": {"description": "napari-alma cell export", "version": __version__,
                 "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(scheme),
    }
    write_atomically(path, lambda out: out.write(json.dumps(document, ensure_ascii=False)))
    return path, left_out


def _image(image_id: int, slide: dict, identity: dict) -> dict:
    return {"id": image_id, "file_name": identity.get("file_name", identity["slide_id"]),
            "width": slide["cols"], "height": slide["rows"],
            "alma_slide_id": identity["slide_id"], "alma_mpp": slide["mpp"],
            **{f"alma_{key}": value for key, value in identity.items() if key != "slide_id"}}


def _annotation(number: int, image_id: int, cell: dict, category_id: int, side: float) -> dict:
    x, y = to_xy(cell["row"], cell["col"])
    return {
        "id": number, "image_id": image_id, "category_id": category_id,
        "bbox": [x - side / 2, y - side / 2, side, side], "area": side * side, "iscrowd": 0,
        "score": None if pd.isna(cell["confidence"]) else float(cell["confidence"]),
        "alma_cell_id": int(cell["cell_id"]), "alma_row": float(cell["row"]),
        "alma_col": float(cell["col"]), "alma_labelled": bool(cell["class"]),
        "alma_predicted_class": cell["predicted_class"],
        "alma_model_version": cell["model_version"],
        "alma_probabilities": parse_probabilities(cell["probabilities"]),
        "alma_source": cell["source"],
    }


def read_coco(path: Path) -> list[tuple[dict, pd.DataFrame]]:
    """Read a COCO file as (image, cell records) pairs, one per image.

    Raises
    ------
    AnnotationFileError
        Naming the annotation (number and id) and field of the first invalid value.
    """
    document = _load(path)
    categories = _category_names(document, path)
    images = {}
    for index, image in enumerate(document["images"], 1):
        if not isinstance(image, dict) or "id" not in image:
            raise file_error(path, tr("store_where_image", index=index), "id",
                             tr("store_problem_missing"))
        images[image["id"]] = (image, [])
    for index, annotation in enumerate(document["annotations"], 1):
        where = tr("store_where_annotation", index=index,
                   id=annotation.get("id") if isinstance(annotation, dict) else None)
        if not isinstance(annotation, dict):
            raise file_error(path, where, "-", tr("store_problem_wrong_type", expected="object"))
        image_id = annotation.get("image_id")
        if image_id not in images:
            raise file_error(path, where, "image_id",
                             tr("store_problem_no_image", value=json.dumps(image_id)))
        image = images[image_id][0]
        images[image_id][1].append(_record(annotation, where, image, categories, path))
    return [(image, records_frame(records)) for image, records in images.values()]


def _load(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise file_error(path, tr("store_where_file"), "-",
                         tr("store_problem_not_json", error=err)) from err
    for key in ("images", "annotations", "categories"):
        if not isinstance(document, dict) or not isinstance(document.get(key), list):
            raise file_error(path, tr("store_where_file"), key,
                             tr("store_problem_wrong_type", expected="list"))
    return document


def _category_names(document: dict, path: Path) -> dict:
    names = {}
    for index, category in enumerate(document["categories"], 1):
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            raise file_error(path, tr("store_where_category", index=index), "name",
                             tr("store_problem_wrong_type", expected="text"))
        names[category.get("id")] = category["name"]
    return names


def _record(annotation: dict, where: str, image: dict, categories: dict, path: Path) -> dict:
    box = annotation.get("bbox")
    if not isinstance(box, list) or len(box) != 4:
        raise file_error(path, where, "bbox",
                         tr("store_problem_wrong_type", expected="[x, y, width, height]"))
    x, y, width, height = (check_number(value, path, where, f"bbox[{i}]")
                           for i, value in enumerate(box))
    row, col = from_xy(x + width / 2, y + height / 2)
    if annotation.get("category_id") not in categories:
        raise file_error(path, where, "category_id", tr(
            "store_problem_no_category", value=json.dumps(annotation.get("category_id"))))
    code = categories[annotation["category_id"]]
    labelled = annotation.get("alma_labelled")
    predicted = annotation.get("alma_predicted_class") or ""
    return {
        "where": where,
        "slide_id": image.get("alma_slide_id"),
        "cell_id": annotation.get("alma_cell_id"),
        "row": exact_position(annotation.get("alma_row"), row),
        "col": exact_position(annotation.get("alma_col"), col),
        "class": code if labelled is not False else "",
        "labelled": labelled if isinstance(labelled, bool) else None,
        "predicted_class": predicted,
        "model_version": annotation.get("alma_model_version") or "",
        "probabilities": annotation.get("alma_probabilities") or {},
        "confidence": annotation.get("score"),
        "source": annotation.get("alma_source"),
    }
