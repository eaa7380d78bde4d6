"""Retraining the shipped model on real crops: a new class, metrics, plots and activation."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from skimage import io, measure

from napari_alma.core.scheme import SchemeError, load_scheme
from napari_alma.learning import al_format, pbc
from napari_alma.learning.crops import extract_crops
from napari_alma.learning.model import default_model_path, load_model
from napari_alma.learning.plots import CONFUSION_NAME
from napari_alma.learning.train import train_model
from napari_alma.learning.versions import activation_decision, register_model
from napari_alma.store.project import Project

PER_CLASS = 3
SEGPC_FIELDS = ("1997", "2001", "2009", "2032")
# Measured from the 10 µm scale bar burned into the SegPC fields (about 242 px).
SEGPC_MPP = 0.041
CROP_PX = 48


def _pbc_rows(data_root):
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    mpp = pbc.estimate_mpp(records)["mpp"]
    chosen, seen = [], {}
    for record in records:
        code = pbc.PBC_TO_SCHEME.get(record["prefix"])
        if code and seen.get(code, 0) < PER_CLASS:
            seen[code] = seen.get(code, 0) + 1
            image = io.imread(record["image"])[..., :3]
            crop = extract_crops(image, [(record["row"], record["col"])], mpp, pbc.CROP_UM,
                                 CROP_PX)[0]
            chosen.append((record["cell_id"], record["cell_id"], code, crop))
    return chosen


def _plasma_rows(data_root):
    """Plasma cells of four SegPC marrow fields: centroids of the larger mask regions."""
    folder = data_root / "segpc2021_bm_plasma_cells" / "mini_test"
    rows = []
    for name in SEGPC_FIELDS:
        image = io.imread(folder / "images" / f"{name}.jpg")[..., :3]
        mask = io.imread(folder / "masks" / f"{name}.jpg")
        mask = (mask if mask.ndim == 2 else mask[..., 0]) >= 128
        regions = sorted(measure.regionprops(measure.label(mask)), key=lambda r: -r.area)
        centres = [region.centroid for region in regions[:2]]
        crops = extract_crops(image, centres, SEGPC_MPP, pbc.CROP_UM, CROP_PX)
        rows += [(f"segpc-{name}", f"{name}-{i}", "PLM", crop) for i, crop in enumerate(crops)]
    return rows


@pytest.fixture(scope="module")
def plasma_export(data_root, tmp_path_factory):
    """30 PBC cells (10 classes) and 8 marrow plasma cells (PLM, unknown to the shipped model)."""
    rows = _pbc_rows(data_root) + _plasma_rows(data_root)
    table = pd.DataFrame({"slide_id": [r[0] for r in rows], "cell_id": [r[1] for r in rows],
                          "class": [r[2] for r in rows], "source": "corrected"})
    crops = np.stack([r[3] for r in rows])
    out = tmp_path_factory.mktemp("al") / "plasma"
    return al_format.write_al_export(out, crops, table, {"crop_um": pbc.CROP_UM})


@pytest.fixture(scope="module")
def retrained(plasma_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "with_plm"
    card = train_model(plasma_export, out, from_model=default_model_path(), epochs=1,
                       device="cpu", version="lab-plm-1")
    return out, card


def test_retrain_adds_plasma_cells(retrained):
    folder, card = retrained
    model = load_model(folder)
    shipped = load_model(default_model_path())
    assert model.classes == shipped.classes + ["PLM"]
    assert model.network.head.out_features == len(shipped.classes) + 1
    assert card["parent_version"] == shipped.version


def test_retrain_reports_metrics(retrained):
    _, card = retrained
    metrics = card["metrics"]
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
    assert "PLM" in metrics["per_class_f1"]
    assert len(metrics["confusion"]) == len(card["classes"])


def test_retrain_scores_parent_on_same_cells(retrained):
    _, card = retrained
    baseline = card["metrics"]["baseline"]
    assert baseline["version"] == load_model(default_model_path()).version
    assert baseline["n_test"] == card["metrics"]["n_test"]
    # The parent has no PLM output, so it misses every validation plasma cell.
    assert baseline["balanced_accuracy"] < 1.0


def test_retrain_writes_confusion_png(retrained):
    folder, _ = retrained
    png = (folder / CONFUSION_NAME).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _model_for_scheme(tmp_path, scheme_name, classes=None):
    folder = tmp_path / scheme_name
    shutil.copytree(default_model_path(), folder)
    card = json.loads((folder / "card.json").read_text())
    card["scheme"] = scheme_name
    if classes:
        card["classes"] = classes
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_other_scheme_model_rejected(tmp_path):
    folder = _model_for_scheme(tmp_path, "lab_scheme")
    with pytest.raises(SchemeError, match="trained for class scheme 'lab_scheme'"):
        load_model(folder, scheme=load_scheme("bone_marrow"))


def test_foreign_class_model_rejected(tmp_path):
    classes = json.loads((default_model_path() / "card.json").read_text())["classes"]
    folder = _model_for_scheme(tmp_path, "peripheral_blood", [*classes[:-1], "LYA"])
    with pytest.raises(SchemeError, match="LYA"):
        load_model(folder, scheme=load_scheme("bone_marrow"))


def test_shared_codes_model_accepted(tmp_path):
    folder = _model_for_scheme(tmp_path, "peripheral_blood")
    model = load_model(folder, scheme=load_scheme("bone_marrow"))
    assert model.card["scheme"] == "peripheral_blood"


def test_other_scheme_model_rejected_by_predict(tmp_path, data_root):
    from napari_alma.learning.predict import predict_slide

    folder = _model_for_scheme(tmp_path, "lab_scheme")
    field = data_root / "bccd" / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg"
    with Project(tmp_path / "p") as project, pytest.raises(SchemeError, match="retrain"):
        predict_slide(project, field, model_dir=folder, device="cpu")


@pytest.mark.parametrize("rule, new, activated", [
    ("if-better", 0.80, True), ("if-better", 0.70, False), ("always", 0.10, True),
    ("never", 0.99, False),
])
def test_activation_rules(rule, new, activated):
    card = {"metrics": {"balanced_accuracy": new,
                        "baseline": {"version": "v1", "balanced_accuracy": 0.75}}}
    assert activation_decision(card, "v1", rule)[0] is activated


def test_if_better_needs_comparison_with_active():
    card = {"metrics": {"balanced_accuracy": 0.9,
                        "baseline": {"version": "other", "balanced_accuracy": 0.5}}}
    activated, reason = activation_decision(card, "v1", "if-better")
    assert activated is False
    assert "not compared" in reason


def test_register_keeps_version_and_rule(retrained, tmp_path):
    folder, card = retrained
    with Project(tmp_path / "p") as project:
        registered = register_model(project, folder, activate="never")
        assert (project.models_folder / card["version"] / "model.safetensors").is_file()
        assert registered["activated"] is False
        assert project.get_meta("active_model") is None


def test_register_if_better_follows_baseline(retrained, tmp_path):
    folder, card = retrained
    metrics = card["metrics"]
    expected = metrics["balanced_accuracy"] > metrics["baseline"]["balanced_accuracy"]
    with Project(tmp_path / "p") as project:
        result = register_model(project, folder, activate="if-better")
        assert result["activated"] is expected
