"""Importing annotation files: matching existing cells, and bad input rejected whole."""

import json

import pytest

from napari_alma.store import imports
from napari_alma.store.exports import export_project
from napari_alma.store.imports import import_annotations
from napari_alma.store.interchange import AnnotationFileError


def _point(x, y, name=None, **properties):
    properties = {"objectType": "detection", **properties}
    if name:
        properties["classification"] = {"name": name, "color": [255, 0, 0]}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": properties}


def _write(tmp_path, features, name="cells.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


def _event_count(project, slide_id):
    return len(project.events(slide_id))


def test_qupath_file_labels_matched_cells(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    square = [[19, 9], [22, 9], [22, 12], [19, 12], [19, 9]]
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square]},
         "properties": {"objectType": "detection",
                        "classification": {"name": "PLM", "color": [0, 0, 128]},
                        "measurements": [{"name": "Nucleus: Area", "value": 30.0}]}},
        _point(391.0, 290.0, "NGS"),
        _point(50.5, 60.5, "EBO"),
    ]
    summary = import_annotations(project, slide_id, _write(tmp_path, features), reader="luis")
    table = project.cell_table(slide_id, reader="luis").set_index("cell_id")

    assert summary["labelled"] == 1
    assert summary["unchanged"] == 1
    assert summary["added"] == 1
    assert table.loc[1, "class"] == "PLM"
    assert table.loc[4, "class"] == ""
    assert table.loc[6, "class"] == "EBO"
    assert (table.loc[6, "row"], table.loc[6, "col"]) == (60.0, 50.0)


def test_import_twice_records_nothing_new(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    export_project(project, "geojson", tmp_path / "out")
    path = tmp_path / "out" / f"{slide_id}.geojson"
    before = _event_count(project, slide_id)
    summary = import_annotations(project, slide_id, path, reader="ana")

    assert summary["unchanged"] == 4
    assert _event_count(project, slide_id) == before


def test_import_events_share_reader_and_time(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    features = [_point(50.5, 60.5, "EBO"), _point(80.5, 90.5, "BLA")]
    before = _event_count(project, slide_id)
    import_annotations(project, slide_id, _write(tmp_path, features), reader="luis")
    new = project.events(slide_id).iloc[before:]

    assert set(new["reader"]) == {"luis"}
    assert new["time"].nunique() == 1
    assert set(new["action"]) == {"add"}


BAD_FEATURES = {
    "wrong type": ([_point("20", 10.5, "LYT")], "geometry.coordinates[0]"),
    "unknown class": ([_point(20.5, 10.5, "LYT"), _point(30.5, 10.5, "XYZ")],
                      "classification.name"),
    "outside": ([_point(20.5, 10.5, "LYT"), _point(20.5, 300.0, "LYT")],
                "coordinates[1] (y)': 300 lies outside"),
    "negative": ([_point(-3.0, 10.5, "LYT")], "coordinates[0] (x)': -3 lies outside"),
    "nan": ([_point(float("nan"), 10.5, "LYT")], "geometry.coordinates[0]"),
    "line geometry": ([{"type": "Feature", "properties": {},
                        "geometry": {"type": "LineString", "coordinates": [[1, 1], [2, 2]]}}],
                      "geometry.type"),
    "probability": ([_point(20.5, 10.5, "LYT", measurements={"Probability: LYT": 1.5})],
                    "probabilities.LYT"),
    "duplicate id": ([_point(20.5, 10.5, "LYT", alma={"cell_id": 7}),
                      _point(30.5, 10.5, "LYT", alma={"cell_id": 7})], "'cell_id'"),
    "text id": ([_point(20.5, 10.5, "LYT", alma={"cell_id": "seven"})], "'cell_id'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEATURES))
def test_bad_geojson_names_feature_and_field(reviewed, tmp_path, case):
    project, slide_id, _ = reviewed
    features, field = BAD_FEATURES[case]
    before = _event_count(project, slide_id)
    cells_before = len(project.cell_table(slide_id))
    with pytest.raises(AnnotationFileError) as caught:
        import_annotations(project, slide_id, _write(tmp_path, features), reader="luis")
    message = str(caught.value)

    assert f"feature {len(features)}" in message
    assert field in message
    assert "Nothing was imported" in message
    assert _event_count(project, slide_id) == before
    assert len(project.cell_table(slide_id)) == cells_before


def test_invalid_json_is_reported(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="not valid JSON"):
        import_annotations(project, slide_id, path)


def test_other_slide_geojson_rejected(reviewed, tmp_path):
    project, slide_id, empty_id = reviewed
    export_project(project, "geojson", tmp_path / "out")
    with pytest.raises(AnnotationFileError) as caught:
        import_annotations(project, empty_id, tmp_path / "out" / f"{slide_id}.geojson")

    assert slide_id in str(caught.value)
    assert "--ignore-slide-id" in str(caught.value)
    assert len(project.cell_table(empty_id)) == 0


def test_ignore_slide_id_imports_anyway(reviewed, tmp_path):
    project, slide_id, empty_id = reviewed
    export_project(project, "geojson", tmp_path / "out")
    summary = import_annotations(project, empty_id, tmp_path / "out" / f"{slide_id}.geojson",
                                 ignore_slide_id=True)

    assert summary["added"] == 4


def test_coco_of_other_size_rejected(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    document = {"images": [{"id": 1, "file_name": "x.png", "width": 640, "height": 480}],
                "annotations": [], "categories": [{"id": 1, "name": "LYT"}]}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="640 x 480"):
        import_annotations(project, slide_id, path)


def test_coco_foreign_file_adds_cells(reviewed, tmp_path):
    project, slide_id, empty_id = reviewed
    document = {
        "images": [{"id": 3, "file_name": "x.png", "width": 400, "height": 300}],
        "annotations": [{"id": 9, "image_id": 3, "category_id": 5, "bbox": [10, 20, 8, 6]}],
        "categories": [{"id": 5, "name": "EBO"}],
    }
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    import_annotations(project, empty_id, path, reader="luis")
    table = project.cell_table(empty_id, reader="luis")

    assert list(table["class"]) == ["EBO"]
    assert (table["row"].iloc[0], table["col"].iloc[0]) == (22.5, 13.5)


def test_coco_unknown_category_named(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    document = {
        "images": [{"id": 1, "file_name": "x.png", "width": 400, "height": 300}],
        "annotations": [{"id": 4, "image_id": 1, "category_id": 2, "bbox": [1, 1, 4, 4]}],
        "categories": [{"id": 2, "name": "Tumour"}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(AnnotationFileError) as caught:
        import_annotations(project, slide_id, path)

    assert "annotation 1 (id 4)" in str(caught.value)
    assert "Tumour" in str(caught.value)


CSV_HEADER = "slide_id,cell_id,row,col,class\n"


@pytest.mark.parametrize(("body", "where", "field"), [
    ("{s},1,10,abc,LYT\n", "line 2", "'col'"),
    ("{s},1,10,20,LYT\n{s},2,nan,20,LYT\n", "line 3", "'row'"),
    ("{s},1,10,20,LYT\n{s},1,11,20,LYT\n", "line 3", "'cell_id'"),
    ("{s},1,10,20,QQQ\n", "line 2", "'class'"),
    ("{s},1,10,20000,LYT\n", "line 2", "'col'"),
])
def test_bad_csv_names_line_and_column(reviewed, tmp_path, body, where, field):
    project, slide_id, _ = reviewed
    path = tmp_path / "cells.csv"
    path.write_text(CSV_HEADER + body.format(s=slide_id), encoding="utf-8")
    before = _event_count(project, slide_id)
    with pytest.raises(AnnotationFileError) as caught:
        import_annotations(project, slide_id, path)

    assert where in str(caught.value)
    assert field in str(caught.value)
    assert _event_count(project, slide_id) == before


def test_csv_of_other_slide_rejected(reviewed, tmp_path):
    project, _, empty_id = reviewed
    path = tmp_path / "cells.csv"
    path.write_text(CSV_HEADER + "S-0000000000,1,10,20,LYT\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="S-0000000000"):
        import_annotations(project, empty_id, path)


def test_csv_without_positions_rejected(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    path = tmp_path / "cells.csv"
    path.write_text("x,y,class\n1,2,LYT\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="row, col"):
        import_annotations(project, slide_id, path)


def test_failure_while_storing_keeps_nothing(reviewed, tmp_path, monkeypatch):
    project, slide_id, _ = reviewed
    features = [_point(50.5 + i, 60.5, "EBO") for i in range(5)]
    calls = []

    def failing_event(*args):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("simulated failure")
        original(*args)

    original = imports._event
    monkeypatch.setattr(imports, "_event", failing_event)
    cells_before = len(project.cell_table(slide_id))
    with pytest.raises(OSError):
        import_annotations(project, slide_id, _write(tmp_path, features))

    assert len(project.cell_table(slide_id)) == cells_before


def test_unknown_extension_asks_for_format(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    path = tmp_path / "cells.txt"
    path.write_text("row,col\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="--format"):
        import_annotations(project, slide_id, path)
    summary = import_annotations(project, slide_id, path, file_format="csv")
    assert summary["added"] == 1
