"""The PBC build script: mapping, pixel-size estimate, test split, export and card."""

import json

import numpy as np
import pytest

from napari_alma.core.scheme import default_scheme
from napari_alma.learning import al_format, pbc


@pytest.fixture(scope="module")
def records(data_root):
    return pbc.read_pbc(data_root / "pbc_wbc_yolo")


def test_mapping_targets_scheme_codes():
    scheme = default_scheme()
    assert all(code in scheme for code in pbc.PBC_TO_SCHEME.values())
    assert len(set(pbc.PBC_TO_SCHEME.values())) == 10
    assert "IG" not in pbc.PBC_TO_SCHEME
    assert "NEUTROPHIL" not in pbc.PBC_TO_SCHEME


def test_records_have_centred_boxes(records):
    assert len(records) == 1135
    rows = np.array([r["row"] for r in records])
    cols = np.array([r["col"] for r in records])
    assert 100 < np.median(rows) < 260
    assert 100 < np.median(cols) < 260
    assert {r["prefix"] for r in records} >= set(pbc.PBC_TO_SCHEME) | {"IG", "NEUTROPHIL"}


def test_mpp_estimate_is_plausible(records):
    estimate = pbc.estimate_mpp(records)
    assert estimate["n"] == 235
    # A 100x oil objective on a CellaVision analyser gives roughly 0.05-0.15 µm/px.
    assert 0.05 < estimate["mpp"] < 0.15
    assert "estimate" in estimate["basis"]


def test_test_split_is_stratified():
    labels = np.repeat(["LYT", "EOS", "BAS"], [100, 50, 10])
    split = pbc.stratified_test_split(labels, 0.2, seed=0)
    assert (split[labels == "LYT"] == "test").sum() == 20
    assert (split[labels == "EOS"] == "test").sum() == 10
    assert (split[labels == "BAS"] == "test").sum() == 2
    np.testing.assert_array_equal(split, pbc.stratified_test_split(labels, 0.2, seed=0))


def test_small_build_end_to_end(records, tmp_path):
    subset = [r for r in records if r["prefix"] in ("LY", "EO", "ERB", "SNE")][::10]
    mpp = pbc.estimate_mpp(records)
    data_dir = pbc.build_export(subset, tmp_path / "al", mpp)
    manifest, table = al_format.read_al_export(data_dir)
    assert manifest["crop_um"] == pbc.CROP_UM
    assert manifest["attribution"].startswith("Acevedo")
    assert set(table["class"]) == {"LYT", "EOS", "EBO", "NGS"}
    assert (table["split"] == "test").sum() == 8

    train_args = pbc.run_train(data_dir, tmp_path / "model", seed=0, epochs=1)
    metrics = pbc.evaluate_on_test(data_dir, tmp_path / "model")
    card = pbc.finish_card(tmp_path / "model", metrics, train_args, "build cmd", mpp)
    stored = json.loads((tmp_path / "model" / "card.json").read_text())
    assert stored == card
    assert card["metrics"]["n_test"] == 8
    assert card["training"]["n_train"] + card["training"]["n_val"] == 32
    assert card["training"]["command"].startswith("napari-alma train ")
    assert card["training"]["pixel_size"]["mpp"] == mpp["mpp"]
    assert card["training"]["n_val"] == 0
    assert card["validation_metrics"]["split"].startswith("none")
    assert card["training"]["selection"] == pbc.SELECTION
    assert "--epochs 1" in card["training"]["command"]
    readme = pbc.readme_text(card)
    assert "# Default cell classifier" in readme
    assert "Acevedo" in readme
    assert "CC BY 4.0" in readme


def test_held_out_records_are_the_export_test_rows(records, tmp_path):
    subset = [r for r in records if r["prefix"] in ("LY", "EO", "MMY", "IG")][::10]
    data_dir = pbc.build_export(subset, tmp_path / "al", pbc.estimate_mpp(records))
    _, table = al_format.read_al_export(data_dir)
    held_out = pbc.held_out_records(subset)
    assert [r["cell_id"] for r in held_out] == list(table.loc[table["split"] == "test",
                                                              "cell_id"])
    assert set(table["split"]) == {"test", "train"}
    assert all(r["prefix"] != "IG" for r in held_out)
