"""Active-learning export of a project: sources, weights, pseudo-labels, split by slide."""

import json

import numpy as np
import pytest

from napari_alma.learning import al_format, pbc
from napari_alma.learning.export import SAMPLE_WEIGHTS, export_active_learning
from napari_alma.slides.reader import fingerprint, open_slide
from napari_alma.store.project import Project

READER = "ana"
CLASSES = ["LYT", "NGS", "EOS", "MON"]
PREFIX = {"LY": "LYT", "SNE": "NGS", "EO": "EOS", "MO": "MON"}
PER_CLASS = 4


def _pick(records):
    chosen, seen = [], {}
    for record in records:
        code = PREFIX.get(record["prefix"])
        if code and seen.get(code, 0) < PER_CLASS:
            chosen.append((record, code))
            seen[code] = seen.get(code, 0) + 1
    return chosen


@pytest.fixture(scope="module")
def project(data_root, tmp_path_factory):
    """16 real PBC images as slides, one cell each; one cell relabelled as a blast.

    The model "predicted" each cell's PBC class, except the first of each class, predicted
    as the next class so that the reader's label is a correction. Each image also has a
    second, unreviewed cell (the same centre shifted by 60 px) predicted with 0.97.
    """
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    mpp = pbc.estimate_mpp(records)["mpp"]
    folder = tmp_path_factory.mktemp("export") / "project"
    with Project(folder) as project:
        for index, (record, code) in enumerate(_pick(records)):
            slide = open_slide(record["image"])
            slide_id = project.register_slide(record["image"], fingerprint(record["image"]),
                                              slide.shape, mpp, "user")
            predicted = CLASSES[(CLASSES.index(code) + 1) % 4] if index % PER_CLASS == 0 else code
            probabilities = np.full((2, 4), 0.01)
            probabilities[0, CLASSES.index(predicted)] = 0.97
            probabilities[1, CLASSES.index(code)] = 0.97
            positions = [(record["row"], record["col"]), (record["row"], record["col"] + 60)]
            project.add_predictions(slide_id, positions, probabilities, CLASSES, "m-1", 5.0)
            label = "BLA" if index == 1 else code
            project.label_cells(slide_id, [1], label, reader=READER)
    return folder


@pytest.fixture(scope="module")
def export_dir(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("al") / "al"
    with Project(project) as opened:
        export_active_learning(opened, out, pseudo_min_confidence=0.95)
    return out


@pytest.fixture(scope="module")
def exported(export_dir):
    return al_format.read_al_export(export_dir)


def test_no_slide_on_both_sides(exported):
    _, table = exported
    sides = table.groupby("slide_id")["split"].nunique()
    assert (sides == 1).all()


def test_classes_on_several_slides_on_both_sides(exported):
    manifest, _ = exported
    counts = manifest["split"]["class_counts"]
    for code in CLASSES:
        assert counts[code]["train"] > 0, code
        assert counts[code]["val"] > 0, code


def test_rare_class_reported(exported):
    manifest, _ = exported
    missing = manifest["split"]["classes_not_on_both_sides"]
    assert [entry["class"] for entry in missing] == ["BLA"]
    assert missing[0]["reason"] == "found on one slide only"


def test_sources_and_weights(exported):
    _, table = exported
    human = table[table["source"] != "pseudo"]
    assert set(human["source"]) == {"model", "corrected"}
    assert (table.loc[table["source"] == "corrected", "weight"] == 1.0).all()
    assert (table.loc[table["source"] == "model", "weight"] == SAMPLE_WEIGHTS["model"]).all()
    assert (human["reader"] == READER).all()
    assert (table["model_version"] == "m-1").all()


def test_pseudo_labels_train_only(exported):
    _, table = exported
    pseudo = table[table["source"] == "pseudo"]
    assert len(pseudo) > 0
    assert (pseudo["split"] == "train").all()
    assert (pseudo["weight"] == SAMPLE_WEIGHTS["pseudo"]).all()
    assert (pseudo["reader"] == "").all()


def test_crops_at_model_geometry(exported, export_dir):
    manifest, table = exported
    crops = al_format.load_crops(export_dir, table.head(3))
    assert crops.shape == (3, pbc.CROP_PX, pbc.CROP_PX, 3)
    assert manifest["crop_um"] == pbc.CROP_UM
    assert manifest["crop_px"] == pbc.CROP_PX
    assert manifest["source_model"].startswith("pbc-")


def test_export_without_pseudo_labels(project, tmp_path):
    with Project(project) as opened:
        export_active_learning(opened, tmp_path / "al")
    _, table = al_format.read_al_export(tmp_path / "al")
    assert "pseudo" not in set(table["source"])
    assert len(table) == PER_CLASS * len(CLASSES)


def test_invalid_pseudo_confidence(project, tmp_path):
    with Project(project) as opened, pytest.raises(ValueError, match="probability"):
        export_active_learning(opened, tmp_path / "al", pseudo_min_confidence=1.5)


def test_cli_warns_about_rare_class(project, tmp_path, capsys):
    from napari_alma.cli import main

    status = main(["export", str(project), "--format", "al", "--out", str(tmp_path / "al"),
                   "--json"])
    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out)["format"] == "al"
    assert "class BLA is not on both sides" in captured.err
