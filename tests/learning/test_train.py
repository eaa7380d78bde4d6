"""Training and the active-learning export format, on real PBC crops."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_alma.learning import al_format, pbc
from napari_alma.learning.model import load_model
from napari_alma.learning.train import (
    TrainingCancelled,
    TrainingDataError,
    assign_splits,
    augment,
    classification_metrics,
    hed_jitter,
    mixup,
    train_model,
)

PER_CLASS = 4


@pytest.fixture(scope="module")
def pbc_records(data_root):
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    chosen, seen = [], {}
    for record in records:
        prefix = record["prefix"]
        if prefix in pbc.PBC_TO_SCHEME and seen.get(prefix, 0) < PER_CLASS:
            chosen.append(record)
            seen[prefix] = seen.get(prefix, 0) + 1
    return chosen, pbc.estimate_mpp(records)


@pytest.fixture(scope="module")
def small_export(pbc_records, tmp_path_factory):
    """An export of 40 real PBC cells (4 per class, 10 classes), crops of 48 px."""
    records, mpp = pbc_records
    out = tmp_path_factory.mktemp("al") / "pbc_small"
    return _write_export(records, mpp, out, crop_px=48)


def _write_export(records, mpp, out, crop_px, drop=()):
    from skimage import io

    from napari_alma.learning.crops import extract_crops

    records = [r for r in records if pbc.PBC_TO_SCHEME[r["prefix"]] not in drop]
    crops = np.stack([
        extract_crops(io.imread(r["image"])[..., :3], [(r["row"], r["col"])], mpp["mpp"],
                      pbc.CROP_UM, crop_px)[0]
        for r in records
    ])
    table = pd.DataFrame({
        "slide_id": [r["cell_id"] for r in records],
        "cell_id": [r["cell_id"] for r in records],
        "row": [r["row"] for r in records],
        "col": [r["col"] for r in records],
        "class": [pbc.PBC_TO_SCHEME[r["prefix"]] for r in records],
    })
    return al_format.write_al_export(out, crops, table, {"crop_um": pbc.CROP_UM})


# -- the export format ----------------------------------------------------------------------
def test_export_round_trip(small_export):
    manifest, table = al_format.read_al_export(small_export)
    crops = al_format.load_crops(small_export, table)
    assert manifest["format"] == "napari-alma-al"
    assert manifest["n_cells"] == 40
    assert manifest["class_counts"]["LYT"] == PER_CLASS
    assert manifest["crop_px"] == 48
    assert list(table.columns[: len(al_format.CELL_COLUMNS)]) == list(al_format.CELL_COLUMNS)
    assert crops.shape == (40, 48, 48, 3)
    assert crops.dtype == np.uint8
    assert (table["weight"] == 1.0).all()
    assert (table["split"] == "").all()


def test_export_crops_survive_png(tmp_path):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    table = pd.DataFrame({"slide_id": ["s/1", "s/1", "s2"], "cell_id": [1, 2, 1],
                          "class": ["LYT", "", "EOS"]})
    out = al_format.write_al_export(tmp_path / "al", crops, table, {"crop_um": 20.0})
    _, read = al_format.read_al_export(out)
    np.testing.assert_array_equal(al_format.load_crops(out, read), crops)
    assert list(read["class"]) == ["LYT", "", "EOS"]


def test_export_refuses_non_empty_folder(tmp_path):
    (tmp_path / "al").mkdir()
    (tmp_path / "al" / "keep.txt").write_text("x")
    table = pd.DataFrame({"slide_id": ["a"], "cell_id": [1], "class": ["LYT"]})
    crops = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(FileExistsError, match="not empty"):
        al_format.write_al_export(tmp_path / "al", crops, table, {"crop_um": 20.0})
    assert (tmp_path / "al" / "keep.txt").exists()
    al_format.write_al_export(tmp_path / "al", crops, table, {"crop_um": 20.0}, overwrite=True)
    assert not (tmp_path / "al" / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["al"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "'format'"),
        ({"crop_um": "wide"}, "'crop_um'"),
        ({"format_version": 99}, "newer"),
        ({"scheme": None}, "'scheme'"),
    ],
)
def test_bad_manifest_names_field(small_export, tmp_path, change, message):
    import shutil

    copy = shutil.copytree(small_export, tmp_path / "copy")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(change)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(al_format.ALFormatError, match=message) as info:
        al_format.read_al_export(copy)
    assert "manifest.json" in str(info.value)


def test_missing_manifest_and_column(small_export, tmp_path):
    import shutil

    copy = shutil.copytree(small_export, tmp_path / "copy")
    table = pd.read_csv(copy / "cells.csv").drop(columns=["class"])
    table.to_csv(copy / "cells.csv", index=False)
    with pytest.raises(al_format.ALFormatError, match="cells.csv: column"):
        al_format.read_al_export(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(al_format.ALFormatError, match="manifest.json is missing"):
        al_format.read_al_export(copy)


# -- splits and metrics ---------------------------------------------------------------------
def test_split_keeps_slides_on_one_side():
    table = pd.DataFrame({
        "slide_id": np.repeat([f"s{i}" for i in range(10)], 6),
        "class": np.tile(["LYT", "EOS", "NGS", "LYT", "EOS", "BAS"], 10),
        "split": "",
    })
    table.loc[0, "split"] = "test"
    split = assign_splits(table, seed=3)
    sides = split.groupby("slide_id")["split"].apply(lambda s: set(s) - {"test"})
    assert all(len(side) == 1 for side in sides)
    for code in ("LYT", "EOS", "NGS", "BAS"):
        assert set(split.loc[split["class"] == code, "split"]) >= {"train", "val"}
    assert split.loc[0, "split"] == "test"


def test_split_of_one_slide_is_by_cell():
    table = pd.DataFrame({
        "slide_id": "only",
        "class": ["LYT"] * 10 + ["EOS"] * 5 + ["BAS"],
        "split": "",
    })
    split = assign_splits(table, seed=0)
    assert (split.loc[split["class"] == "LYT", "split"] == "val").sum() == 2
    assert (split.loc[split["class"] == "EOS", "split"] == "val").sum() == 1
    assert list(split.loc[split["class"] == "BAS", "split"]) == ["train"]


def test_metrics_on_known_confusion():
    metrics = classification_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 4)
    assert metrics["confusion"][0] == [1, 1, 0, 0]
    assert metrics["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert metrics["f1"][1] == pytest.approx(0.8)
    assert np.isnan(metrics["f1"][3])


# -- training -------------------------------------------------------------------------------
def test_train_from_scratch_one_epoch(small_export, tmp_path):
    calls = []
    card = train_model(small_export, tmp_path / "m", epochs=1, seed=1, device="cpu",
                       progress=lambda f, m: calls.append(f), command="napari-alma train x")
    model = load_model(tmp_path / "m")
    assert model.classes == card["classes"]
    assert len(card["classes"]) == 10
    assert card["parent_version"] is None
    assert card["input_px"] == 48
    assert card["training"]["command"] == "napari-alma train x"
    assert len(card["training"]["data_fingerprint"]) == 64
    assert calls == [1.0]
    assert 0.0 <= card["metrics"]["balanced_accuracy"] <= 1.0
    assert np.sum(card["metrics"]["confusion"]) == card["metrics"]["n_test"]
    probs = model.predict(al_format.load_crops(small_export, al_format.read_al_export(
        small_export)[1])[:5])
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_finetune_adds_class_to_head(pbc_records, small_export, tmp_path):
    records, mpp = pbc_records
    parent_data = _write_export(records, mpp, tmp_path / "no_bas", crop_px=48, drop=("BAS",))
    parent_card = train_model(parent_data, tmp_path / "parent", epochs=1, device="cpu")
    assert "BAS" not in parent_card["classes"]
    parent = load_model(tmp_path / "parent")

    card = train_model(small_export, tmp_path / "child", from_model=tmp_path / "parent",
                       epochs=1, device="cpu")
    child = load_model(tmp_path / "child")
    assert card["parent_version"] == parent_card["version"]
    assert child.classes == parent.classes + ["BAS"]
    assert child.network.head.weight.shape[0] == 10
    # The feature extractor starts from the parent, so one epoch leaves it close to it.
    first = "features.0.weight"
    change = (child.network.state_dict()[first] - parent.network.state_dict()[first]).abs()
    assert float(change.max()) < 0.05


def test_cancel_writes_nothing(small_export, tmp_path):
    with pytest.raises(TrainingCancelled):
        train_model(small_export, tmp_path / "m", epochs=1, device="cpu", cancel=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_unknown_class_names_class_and_file(small_export, tmp_path):
    import shutil

    copy = shutil.copytree(small_export, tmp_path / "copy")
    table = pd.read_csv(copy / "cells.csv", keep_default_na=False)
    table.loc[3, "class"] = "XYZ"
    table.to_csv(copy / "cells.csv", index=False)
    with pytest.raises(TrainingDataError, match="XYZ") as info:
        train_model(copy, tmp_path / "m", epochs=1, device="cpu")
    assert "cells.csv" in str(info.value)
    assert not (tmp_path / "m").exists()


def test_all_cells_marked_train_fits_without_validation(small_export, tmp_path):
    import shutil

    copy = shutil.copytree(small_export, tmp_path / "copy")
    table = pd.read_csv(copy / "cells.csv", keep_default_na=False)
    table["split"] = "train"
    table.to_csv(copy / "cells.csv", index=False)
    messages = []
    card = train_model(copy, tmp_path / "m", epochs=2, device="cpu",
                       progress=lambda f, m: messages.append(m))
    assert card["training"]["n_train"] == 40
    assert card["training"]["n_val"] == 0
    assert card["training"]["epochs"] == 2
    assert "balanced_accuracy" not in card["metrics"]
    assert card["metrics"]["split"].startswith("none")
    assert all("no validation" in m for m in messages)
    assert load_model(tmp_path / "m").classes == card["classes"]


# -- augmentation ---------------------------------------------------------------------------
def test_hed_jitter_identity_and_stain_shift(small_export):
    import torch

    crops = al_format.load_crops(small_export, al_format.read_al_export(small_export)[1])[:4]
    images = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    same = hed_jitter(images, torch.ones(4, 3), torch.zeros(4, 3))
    # Pure black and white clip at the ends of the optical-density range; the rest returns.
    np.testing.assert_allclose(same.numpy(), images.clamp(1 / 255, 1).numpy(), atol=1e-4)
    darker = hed_jitter(images, torch.tensor([[1.3, 1.0, 1.0]] * 4), torch.zeros(4, 3))
    # More haematoxylin absorbs more red than blue: the crop turns darker and bluer.
    assert float(darker.mean()) < float(images.mean())
    assert float((darker[:, 0] - images[:, 0]).mean()) < float((darker[:, 2] - images[:, 2]).mean())


def test_augment_is_seeded_and_normalised(small_export):
    import torch

    crops = al_format.load_crops(small_export, al_format.read_al_export(small_export)[1])[:8]
    batch = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()
    norm = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    first = augment(batch, torch.Generator().manual_seed(3), norm, hed_sigma=0.08)
    again = augment(batch, torch.Generator().manual_seed(3), norm, hed_sigma=0.08)
    assert first.shape == (8, 3, 48, 48)
    assert first.dtype == torch.float32
    torch.testing.assert_close(first, again)
    assert float(first.min()) >= -2.0 - 1e-5
    assert float(first.max()) <= 2.0 + 1e-5


def test_mixup_soft_targets_keep_own_label_first():
    import torch

    inputs = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 3, 2, 2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    mixed, targets = mixup(inputs, labels, 3, torch.Generator().manual_seed(0), alpha=0.4)
    assert targets.shape == (6, 3)
    np.testing.assert_allclose(targets.sum(dim=1).numpy(), 1.0, rtol=1e-6)
    # Each crop keeps at least half of its own label's mass.
    own = targets[torch.arange(6), labels]
    assert bool((own >= 0.5 * 0.95).all())
    assert mixed.shape == inputs.shape
    unchanged = mixup(inputs, labels, 3, torch.Generator().manual_seed(0), alpha=0.0)
    assert unchanged[1] is labels
