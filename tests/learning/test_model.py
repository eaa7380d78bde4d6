"""Model folders: saving, loading, refusing pickles and foreign classes, devices."""

import json
import pickle

import numpy as np
import pytest

from napari_alma.core.scheme import SchemeError, default_scheme
from napari_alma.learning.model import (
    ModelError,
    architecture_params,
    build_network,
    default_model_path,
    load_model,
    read_card,
    save_model,
    select_device,
)


def _card(classes, input_px=32):
    return {
        "format": "napari-alma-model", "format_version": 1, "version": "test-1",
        "parent_version": None, "created": "2026-01-01T00:00:00+00:00",
        "scheme": "bone_marrow", "scheme_version": 1, "classes": classes,
        "input_um": 24.0, "input_px": input_px,
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "architecture": architecture_params(widths=(8, 16)), "training": {}, "metrics": {},
    }


@pytest.fixture
def tiny_model(tmp_path):
    card = _card(["LYT", "EOS", "NGS"])
    network = build_network(3, widths=(8, 16))
    return save_model(network, card, tmp_path / "tiny")


class _MakesFile:
    """Unpickling this object creates the file at ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_save_and_load_round_trip(tiny_model):
    model = load_model(tiny_model, scheme=default_scheme())
    assert model.classes == ["LYT", "EOS", "NGS"]
    assert model.input_px == 32
    assert model.input_um == 24.0
    assert model.version == "test-1"
    assert sorted(p.name for p in tiny_model.iterdir()) == ["card.json", "model.safetensors"]


def test_predict_resizes_and_sums_to_one(tiny_model):
    model = load_model(tiny_model)
    crops = np.random.default_rng(0).integers(0, 256, (5, 50, 50, 3), dtype=np.uint8)
    probs = model.predict(crops, batch_size=2)
    assert probs.shape == (5, 3)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_pickled_checkpoint_is_never_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.pt").write_bytes(pickle.dumps(_MakesFile(marker)))
    (folder / "card.json").write_text(json.dumps(_card(["LYT"])))
    with pytest.raises(ModelError, match="model.pt") as info:
        load_model(folder)
    assert "pickle" in str(info.value)
    with pytest.raises(ModelError, match="is a file"):
        load_model(folder / "model.pt")
    assert not marker.exists()


def test_pickle_renamed_safetensors_is_rejected(tmp_path):
    marker = tmp_path / "pwned.txt"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(pickle.dumps(_MakesFile(marker)))
    (folder / "card.json").write_text(json.dumps(_card(["LYT"])))
    with pytest.raises(ModelError, match="not a safetensors file"):
        load_model(folder)
    assert not marker.exists()


def test_foreign_class_names_class(tmp_path):
    card = _card(["LYT", "GHOST"])
    folder = save_model(build_network(2, widths=(8, 16)), card, tmp_path / "foreign")
    with pytest.raises(SchemeError, match="GHOST") as info:
        load_model(folder, scheme=default_scheme())
    assert "LYT" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("classes", [], "'classes'"),
        ("input_px", "big", "'input_px'"),
        ("format", "onnx", "'format'"),
        ("normalization", {"mean": [0.5]}, "normalization.mean"),
    ],
)
def test_bad_card_names_folder_and_field(tiny_model, field, value, message):
    card = json.loads((tiny_model / "card.json").read_text())
    card[field] = value
    (tiny_model / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=message) as info:
        read_card(tiny_model)
    assert str(tiny_model) in str(info.value)


def test_weights_not_matching_card(tiny_model):
    card = json.loads((tiny_model / "card.json").read_text())
    card["classes"] = ["LYT", "EOS"]
    (tiny_model / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="model.safetensors"):
        load_model(tiny_model)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nothing")


def test_save_replaces_existing_folder(tiny_model):
    card = _card(["BAS"])
    save_model(build_network(1, widths=(8, 16)), card, tiny_model)
    assert load_model(tiny_model).classes == ["BAS"]
    assert [p.name for p in tiny_model.parent.iterdir()] == ["tiny"]


def test_select_device_without_gpu():
    import torch

    if torch.cuda.is_available():
        assert select_device("cuda") == "cuda"
    else:
        with pytest.raises(ValueError, match="CUDA"):
            select_device("cuda")
        assert select_device("auto") in ("cpu", "mps")
    assert select_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="Unknown device"):
        select_device("tpu")


def test_network_size_is_small():
    network = build_network(10)
    parameters = sum(p.numel() for p in network.parameters())
    assert 100_000 < parameters < 1_000_000


# -- the shipped default model ---------------------------------------------------------------
def test_default_model_loads_with_scheme():
    model = load_model(default_model_path(), scheme=default_scheme())
    assert set(model.classes) == {"BAS", "NGB", "EOS", "EBO", "LYT", "MMZ", "MON", "MYB",
                                  "PMO", "NGS"}
    assert model.card["metrics"]["balanced_accuracy"] >= 0.8
    assert (default_model_path() / "README.md").is_file()
    assert (default_model_path() / "model.safetensors").stat().st_size < 5_000_000


def test_default_model_classifies_held_out_pbc(data_root):
    from skimage import io

    from napari_alma.learning import pbc
    from napari_alma.learning.crops import extract_crops

    model = load_model(default_model_path())
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    kept = [r for r in records if r["prefix"] in pbc.PBC_TO_SCHEME]
    labels = np.array([pbc.PBC_TO_SCHEME[r["prefix"]] for r in kept])
    split = pbc.stratified_test_split(labels, pbc.TEST_FRACTION, pbc.SEED)
    mpp = model.card["training"]["pixel_size"]["mpp"]
    # The first 3 held-out test images of each class: never seen in training or validation.
    chosen = [int(i) for code in sorted(set(labels))
              for i in np.flatnonzero((labels == code) & (split == "test"))[:3]]
    crops = np.stack([
        extract_crops(io.imread(kept[i]["image"])[..., :3], [(kept[i]["row"], kept[i]["col"])],
                      mpp, model.input_um, model.input_px)[0]
        for i in chosen
    ])
    predicted = np.array(model.classes)[model.predict(crops).argmax(axis=1)]
    correct = predicted == labels[chosen]
    assert len(chosen) == 30
    assert correct.mean() >= 0.7, list(zip(labels[chosen], predicted))
    for code in ("LYT", "EOS", "EBO"):
        assert correct[labels[chosen] == code].sum() >= 2


def test_predict_tta_averages_dihedral_views(tiny_model):
    model = load_model(tiny_model)
    crops = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    probs = model.predict(crops, tta=True)
    rotated = model.predict(np.rot90(crops, 1, axes=(1, 2)).copy(), tta=True)
    np.testing.assert_allclose(probs, rotated, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
