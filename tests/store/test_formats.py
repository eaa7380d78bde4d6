"""GeoJSON, COCO, CSV and Parquet: coordinate conventions and lossless round trips."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from napari_alma.core.scheme import load_scheme
from napari_alma.store.exports import export_project
from napari_alma.store.geojson import CELL_ID_MEASUREMENT
from napari_alma.store.imports import import_annotations
from napari_alma.store.project import Project

from .conftest import MPP, register_slides


def _geojson(out, slide_id):
    return json.loads((out / f"{slide_id}.geojson").read_text(encoding="utf-8"))


def test_geojson_follows_qupath_layout(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    export_project(project, "geojson", tmp_path / "out")
    document = _geojson(tmp_path / "out", slide_id)
    features = {f["properties"]["measurements"][CELL_ID_MEASUREMENT]: f
                for f in document["features"]}

    assert document["type"] == "FeatureCollection"
    assert sorted(features) == [1, 2, 4, 5]
    first = features[1]
    assert first["geometry"] == {"type": "Point", "coordinates": [20.5, 10.5]}
    assert first["properties"]["objectType"] == "detection"
    assert first["properties"]["classification"] == {"name": "LYT", "color": [67, 99, 216]}
    assert first["properties"]["measurements"]["Probability: NGS"] == pytest.approx(0.7)
    assert len(first["id"]) == 36
    assert features[4]["properties"]["classification"]["name"] == "NGS"
    assert features[4]["properties"]["alma"]["class"] == ""


def test_coco_boxes_centre_on_cells(reviewed, tmp_path):
    project, slide_id, empty_id = reviewed
    export_project(project, "coco", tmp_path / "out")
    document = json.loads((tmp_path / "out" / "coco.json").read_text(encoding="utf-8"))
    side = 20 / MPP
    first = next(a for a in document["annotations"] if a["alma_cell_id"] == 1)
    categories = {c["id"]: c["name"] for c in document["categories"]}

    assert first["bbox"] == pytest.approx([20.5 - side / 2, 10.5 - side / 2, side, side])
    assert categories[first["category_id"]] == "LYT"
    assert document["categories"][0] == {
        "id": 1, "name": "BLA", "supercategory": "myeloid", "alma_name_en": "blast",
        "alma_name_es": "blasto"}
    assert [image["file_name"] for image in document["images"]] == [slide_id, empty_id]
    assert document["images"][0]["width"] == 400
    assert document["images"][0]["height"] == 300


def _export_import_export(reviewed, fresh, tmp_path, file_format):
    project, slide_id, empty_id = reviewed
    first = export_project(project, file_format, tmp_path / "first")
    other, _ = fresh
    for target in (slide_id, empty_id):
        source = (first["files"][0] if file_format != "geojson"
                  else tmp_path / "first" / f"{target}.geojson")
        if file_format in ("csv", "parquet") and target == empty_id:
            continue
        import_annotations(other, target, source, reader="ana")
    second = export_project(other, file_format, tmp_path / "second")
    return first, second


@pytest.mark.parametrize("file_format", ["geojson", "coco"])
def test_json_round_trip_is_lossless(reviewed, fresh, tmp_path, file_format):
    first, second = _export_import_export(reviewed, fresh, tmp_path, file_format)
    for before, after in zip(first["files"], second["files"]):
        documents = [json.loads(open(p, encoding="utf-8").read()) for p in (before, after)]
        for document in documents:
            document.pop("info", None)
        assert documents[0] == documents[1]


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_table_round_trip_is_lossless(reviewed, fresh, tmp_path, file_format):
    first, second = _export_import_export(reviewed, fresh, tmp_path, file_format)
    read = pd.read_csv if file_format == "csv" else pd.read_parquet
    before, after = (read(summary["files"][0]).drop(columns="updated_at")
                     for summary in (first, second))
    pd.testing.assert_frame_equal(before, after)


def test_round_trip_keeps_labels(reviewed, fresh, tmp_path):
    _export_import_export(reviewed, fresh, tmp_path, "geojson")
    other, (slide_id, _) = fresh
    table = other.cell_table(slide_id).set_index("cell_id")

    assert list(table.index) == [1, 2, 4, 5]
    assert table.loc[1, "class"] == "LYT"
    assert table.loc[1, "predicted_class"] == "NGS"
    assert table.loc[2, "label_source"] == "model"
    assert table.loc[4, "class"] == ""
    assert table.loc[5, "source"] == "added"
    assert (table.loc[5, "row"], table.loc[5, "col"]) == (200.5, 300.125)


def test_empty_slide_round_trip(reviewed, fresh, tmp_path):
    project, _, empty_id = reviewed
    export_project(project, "geojson", tmp_path / "first", slides=[empty_id])
    other, _ = fresh
    summary = import_annotations(other, empty_id, tmp_path / "first" / f"{empty_id}.geojson")

    assert summary["cells_in_file"] == 0
    assert _geojson(tmp_path / "first", empty_id)["features"] == []


def _non_ascii_scheme(tmp_path):
    scheme = {
        "name": "médula_prueba", "version": 1,
        "classes": [
            {"code": "BLÁ", "en": "blast", "es": "blasto", "color": "#e6194b", "key": "b",
             "counted": True, "lineage": "myeloid", "blast": "yes"},
            {"code": "ERITRO·Ñ", "en": "erythroblast", "es": "eritroblasto",
             "color": "#ff4500", "key": "d", "counted": True, "lineage": "erythroid",
             "blast": "no"},
        ],
    }
    path = tmp_path / "esquema ñ.yaml"
    path.write_text(yaml.safe_dump(scheme, allow_unicode=True), encoding="utf-8")
    return load_scheme(path)


@pytest.mark.parametrize("file_format", ["geojson", "coco", "csv", "parquet"])
def test_non_ascii_classes_and_names(tmp_path, file_format):
    scheme = _non_ascii_scheme(tmp_path)
    with Project(tmp_path / "a", scheme=scheme) as project:
        slide_id, _ = register_slides(project)
        project.add_cell(slide_id, 5.0, 6.0, "ERITRO·Ñ", reader="Íñigo")
        summary = export_project(project, file_format, tmp_path / "señal ñ")
    with Project(tmp_path / "b", scheme=scheme) as other:
        register_slides(other)
        exported = Path(summary["files"][0])
        source = exported.with_name("células ñ" + exported.suffix)
        exported.rename(source)
        import_annotations(other, slide_id, source, reader="Íñigo")
        table = other.cell_table(slide_id)

    assert list(table["class"]) == ["ERITRO·Ñ"]
    assert list(table["reader"]) == ["Íñigo"]


def _edit_geojson_class(path, cell_id, name):
    document = json.loads(path.read_text(encoding="utf-8"))
    for feature in document["features"]:
        if feature["properties"]["alma"]["cell_id"] == cell_id:
            feature["properties"]["classification"]["name"] = name
    path.write_text(json.dumps(document), encoding="utf-8")


def test_geojson_class_edited_elsewhere_imported(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    export_project(project, "geojson", tmp_path / "out", slides=[slide_id])
    path = tmp_path / "out" / f"{slide_id}.geojson"
    _edit_geojson_class(path, 4, "BLA")
    summary = import_annotations(project, slide_id, path, reader="bea")
    table = project.cell_table(slide_id, reader="bea").set_index("cell_id")
    assert summary["labelled"] >= 1
    assert table.loc[4, "class"] == "BLA"


def test_geojson_unknown_edited_class_rejected(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    export_project(project, "geojson", tmp_path / "out", slides=[slide_id])
    path = tmp_path / "out" / f"{slide_id}.geojson"
    _edit_geojson_class(path, 4, "Blast cell")
    events_before = len(project.events(slide_id))
    with pytest.raises(ValueError, match="Blast cell"):
        import_annotations(project, slide_id, path, reader="bea")
    assert len(project.events(slide_id)) == events_before
