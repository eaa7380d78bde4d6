"""The command line's import, export and audit of annotation files, with --json."""

import json
from pathlib import Path

import numpy as np
import pytest

from napari_alma.cli import main
from napari_alma.store.project import Project

SLIDE = "/hospital/frotis ñ 17.tif"


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _project(folder, with_cells):
    with Project(folder) as project:
        slide_id = project.register_slide(SLIDE, "fp-cli", (200, 300), mpp=0.5)
        if with_cells:
            project.add_predictions(slide_id, np.array([[10.0, 10.0], [50.0, 80.0]]),
                                    np.array([[0.9, 0.1], [0.3, 0.7]]), ["NGS", "LYT"], "m1",
                                    radius=2.0)
            project.label_cells(slide_id, [1], "BLA", reader="ana")
    return slide_id


@pytest.mark.parametrize("file_format", ["geojson", "coco", "csv", "parquet", "differential"])
def test_export_json_summary(tmp_path, capsys, file_format):
    _project(tmp_path / "p", with_cells=True)
    summary = run_json(capsys, "export", str(tmp_path / "p"), "--format", file_format,
                       "--out", str(tmp_path / "out"))

    assert summary["format"] == file_format
    assert summary["slides"] == 1
    assert summary["identified"] is False
    for path in summary["files"]:
        assert Path(path).is_file(), path


def test_import_then_audit(tmp_path, capsys):
    slide_id = _project(tmp_path / "a", with_cells=True)
    _project(tmp_path / "b", with_cells=False)
    run_json(capsys, "export", str(tmp_path / "a"), "--format", "geojson", "--out",
             str(tmp_path / "out"))
    summary = run_json(capsys, "import", str(tmp_path / "b"), "--slide", SLIDE,
                       str(tmp_path / "out" / f"{slide_id}.geojson"), "--reader", "luis")
    audit = run_json(capsys, "audit", str(tmp_path / "b"), "--slide", slide_id)
    cell_audit = run_json(capsys, "audit", str(tmp_path / "b"), "--slide", slide_id,
                          "--cell", "1")

    assert summary["added"] == 2
    assert summary["format"] == "geojson"
    assert [event["reader"] for event in audit["events"]] == ["luis"]
    assert audit["slide_events"] == []
    assert cell_audit["events"][0]["new_class"] == "BLA"


def test_bad_import_exits_with_message(tmp_path, capsys):
    slide_id = _project(tmp_path / "p", with_cells=True)
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
         "properties": {"classification": {"name": "NOPE"}}}]}), encoding="utf-8")
    status = main(["import", str(tmp_path / "p"), "--slide", slide_id, str(path)])
    error = capsys.readouterr().err

    assert status == 2
    assert "feature 1" in error
    assert "NOPE" in error
    assert len(run_json(capsys, "audit", str(tmp_path / "p"), "--slide", slide_id)["events"]) == 1


def test_export_identify_names_file(tmp_path, capsys):
    _project(tmp_path / "p", with_cells=True)
    summary = run_json(capsys, "export", str(tmp_path / "p"), "--format", "csv", "--out",
                       str(tmp_path / "out"), "--identify")

    assert summary["identified"] is True
    assert "frotis ñ 17.tif" in (tmp_path / "out" / "cells.csv").read_text(encoding="utf-8")
