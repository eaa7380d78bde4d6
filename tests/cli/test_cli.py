"""The command line end to end on a real smear field: predict, label, count, export, train."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from napari_alma.cli import main
from napari_alma.demo import sample_path


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    project = tmp_path_factory.mktemp("cli") / "project"
    assert main(["predict", str(sample_path()), "--project", str(project)]) == 0
    return project


def test_predict_finds_the_mosaic_cells(predicted, capsys):
    counts = run_json(capsys, "count", str(predicted), "--slide", str(sample_path()))
    # The mosaic contains 20 PBC cell images, each centred on one leukocyte or erythroblast.
    assert 18 <= counts["total_counted"] <= 26
    assert counts["unreviewed"] == counts["total_counted"]
    assert "unreviewed" in counts["warnings"]
    assert "below_target" in counts["warnings"]


def test_label_audit_and_count(predicted, capsys):
    slide = str(sample_path())
    before = run_json(capsys, "count", str(predicted), "--slide", slide)
    result = run_json(capsys, "label", str(predicted), "--slide", slide, "--cell", "1", "2",
                      "--class", "BLA", "--reader", "ana")
    assert result["changed"] == 2
    events = run_json(capsys, "audit", str(predicted), "--slide", slide, "--cell", "1")["events"]
    assert events[-1]["reader"] == "ana"
    assert events[-1]["new_class"] == "BLA"
    assert events[-1]["time"].endswith("+00:00")
    after = run_json(capsys, "count", str(predicted), "--slide", slide)
    assert after["counts"]["BLA"] == before["counts"]["BLA"] + 2
    assert after["unreviewed"] == before["unreviewed"] - 2
    assert after["blast_percent"] == pytest.approx(100 * after["counts"]["BLA"]
                                                   / after["total_counted"])


def test_export_csv_columns(predicted, tmp_path, capsys):
    run_json(capsys, "export", str(predicted), "--format", "csv", "--out", str(tmp_path))
    cells = pd.read_csv(tmp_path / "cells.csv", keep_default_na=False)
    for column in ("slide_id", "cell_id", "row", "col", "row_um", "col_um", "class",
                   "predicted_class", "confidence", "source", "reader", "updated_at",
                   "model_version"):
        assert column in cells.columns
    assert set(cells["source"]) == {"model"}
    assert "pbc_mosaic" not in "".join(cells["slide_id"])


def test_unknown_class_is_a_clear_error(predicted, capsys):
    status = main(["label", str(predicted), "--slide", str(sample_path()), "--cell", "1",
                   "--class", "XYZ"])
    assert status == 2
    assert "XYZ" in capsys.readouterr().err


def test_missing_slide_names_the_fix(tmp_path, capsys):
    assert main(["count", str(tmp_path / "p"), "--slide", "nope.jpg"]) == 2
    assert "napari-alma predict" in capsys.readouterr().err


def test_foreign_file_is_a_clear_error(tmp_path, capsys):
    notes = tmp_path / "notes.tif"
    notes.write_text("not an image", encoding="utf-8")
    assert main(["predict", str(notes), "--project", str(tmp_path / "p")]) == 2
    error = capsys.readouterr().err
    assert "notes.tif" in error


def test_blank_field_without_pixel_size_names_the_fix(tmp_path, capsys):
    from skimage import io

    blank = tmp_path / "blank.png"
    io.imsave(blank, np.full((300, 300, 3), 250, np.uint8), check_contrast=False)
    assert main(["predict", str(blank), "--project", str(tmp_path / "p")]) == 2
    assert "--mpp" in capsys.readouterr().err
    assert main(["predict", str(blank), "--project", str(tmp_path / "p"), "--mpp", "0.1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["slides"][0]
    assert result["new"] == []
    assert result["mpp"] == pytest.approx(0.1)


def test_export_train_and_predict_again(tmp_path, capsys):
    project = tmp_path / "project"
    slide = str(sample_path())
    run_json(capsys, "predict", slide, "--project", str(project))
    run_json(capsys, "label", str(project), "--slide", slide, "--cell", "1", "2", "3",
             "--class", "BLA", "--reader", "ana")
    run_json(capsys, "label", str(project), "--slide", slide, "--cell", "4", "5",
             "--class", "NGS", "--reader", "ana")
    exported = run_json(capsys, "export", str(project), "--format", "al",
                        "--out", str(tmp_path / "al"))
    assert (tmp_path / "al" / "manifest.json").is_file()
    assert exported["format"] == "al"

    card = run_json(capsys, "train", str(tmp_path / "al"), "--from", "default",
                    "--out", str(tmp_path / "v2"), "--epochs", "1", "--device", "cpu",
                    "--version", "lab-v2", "--project", str(project), "--activate", "always")
    assert card["version"] == "lab-v2"
    assert "BLA" in card["classes"]
    assert card["training"]["command"].startswith("napari-alma train ")
    assert (project / "models" / "lab-v2" / "model.safetensors").is_file()

    again = run_json(capsys, "predict", slide, "--project", str(project))["slides"][0]
    assert again["model_version"] == "lab-v2"
    assert again["new"] == []
    counts = run_json(capsys, "count", str(project), "--slide", slide)
    assert counts["counts"]["BLA"] >= 3


def test_second_reader_kept_apart(predicted, capsys):
    slide = str(sample_path())
    run_json(capsys, "label", str(predicted), "--slide", slide, "--cell", "3", "--class", "EBO",
             "--reader", "ana")
    second = run_json(capsys, "label", str(predicted), "--slide", slide, "--cell", "3",
                      "--class", "lyt", "--reader", "luis")
    assert second["class"] == "LYT"
    assert second["primary_reader"] == "ana"
    assert main(["label", str(predicted), "--slide", slide, "--cell", "3", "--class", "LYT",
                 "--reader", "luis"]) == 0
    assert "--reader luis" in capsys.readouterr().out
    primary = run_json(capsys, "count", str(predicted), "--slide", slide)
    luis = run_json(capsys, "count", str(predicted), "--slide", slide, "--reader", "luis")
    assert luis["counts"]["LYT"] == primary["counts"]["LYT"] + 1
    assert luis["counts"]["EBO"] == primary["counts"]["EBO"] - 1


def test_audit_json_is_strict(predicted, capsys):
    assert main(["audit", str(predicted), "--slide", str(sample_path()), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))


def test_copied_file_finds_its_slide(predicted, tmp_path, capsys):
    copy = tmp_path / "copy of mosaic.tif"
    copy.write_bytes(sample_path().read_bytes())
    by_copy = run_json(capsys, "count", str(predicted), "--slide", str(copy))
    by_original = run_json(capsys, "count", str(predicted), "--slide", str(sample_path()))
    assert by_copy["slide_id"] == by_original["slide_id"]


def test_missing_project_is_not_created(tmp_path, capsys):
    missing = tmp_path / "NoProject"
    assert main(["count", str(missing), "--slide", "x.jpg"]) == 2
    assert "No napari-alma project" in capsys.readouterr().err
    assert not missing.exists()


def test_existing_output_needs_overwrite(predicted, tmp_path, capsys):
    args = ["export", str(predicted), "--format", "csv", "--out", str(tmp_path)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_invalid_numbers_rejected(predicted, capsys):
    with pytest.raises(SystemExit):
        main(["count", str(predicted), "--slide", str(sample_path()), "--target", "0"])
    assert main(["predict", str(sample_path()), "--project", str(predicted),
                 "--region", "100", "0", "50", "10"]) == 2
    assert "Invalid --region" in capsys.readouterr().err
    assert main(["predict", str(sample_path()), "--project", str(predicted), "--mpp", "0"]) == 2
    assert "0.01-10" in capsys.readouterr().err


def test_open_slices_off_gui_thread(monkeypatch):
    from napari_alma import cli

    monkeypatch.delenv("NAPARI_EXPERIMENTAL_ASYNC_", raising=False)
    cli._slice_off_gui_thread()
    assert os.environ["NAPARI_EXPERIMENTAL_ASYNC_"] == "1"


def test_user_async_choice_kept(monkeypatch):
    from napari_alma import cli

    monkeypatch.setenv("NAPARI_EXPERIMENTAL_ASYNC_", "0")
    cli._slice_off_gui_thread()
    assert os.environ["NAPARI_EXPERIMENTAL_ASYNC_"] == "0"
