"""Slide-scale inference: BALD from Monte-Carlo dropout, regions, devices and a cluster."""

import numpy as np
import pytest
from skimage import io

from napari_alma.core.uncertainty import score
from napari_alma.learning import pbc
from napari_alma.learning.crops import extract_crops
from napari_alma.learning.model import (
    default_model_path,
    device_options,
    load_model,
    mc_dropout_samples,
    select_device,
    to_tensor,
)
from napari_alma.learning.predict import clip_region, predict_slide
from napari_alma.store.project import Project

FIELDS = ("BloodImage_00000", "BloodImage_00005")


@pytest.fixture(scope="module")
def pbc_crops(data_root):
    """Twelve real PBC cells, one or two per class, cropped as the shipped model expects."""
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    mpp = pbc.estimate_mpp(records)["mpp"]
    chosen = [r for r in records if r["prefix"] in pbc.PBC_TO_SCHEME][::80][:12]
    return np.stack([
        extract_crops(io.imread(r["image"])[..., :3], [(r["row"], r["col"])], mpp,
                      pbc.CROP_UM, pbc.CROP_PX)[0]
        for r in chosen
    ])


@pytest.fixture
def field(data_root):
    return data_root / "bccd" / "BCCD" / "JPEGImages" / f"{FIELDS[0]}.jpg"


def test_bald_positive_with_dropout(pbc_crops):
    model = load_model(default_model_path())
    _, bald = model.predict_with_bald(pbc_crops, passes=10, device="cpu")
    assert bald.shape == (len(pbc_crops),)
    assert (bald >= 0).all()
    assert bald.max() > 1e-4


def test_bald_zero_without_dropout(pbc_crops):
    model = load_model(default_model_path())
    model.network.dropout.p = 0.0
    _, bald = model.predict_with_bald(pbc_crops, passes=5, device="cpu")
    np.testing.assert_allclose(bald, 0.0, atol=1e-6)


def test_bald_probabilities_match_predict(pbc_crops):
    model = load_model(default_model_path())
    probabilities, _ = model.predict_with_bald(pbc_crops, passes=4, device="cpu")
    np.testing.assert_allclose(probabilities, model.predict(pbc_crops), atol=1e-5)


def test_bald_is_seeded(pbc_crops):
    model = load_model(default_model_path())
    first = model.predict_with_bald(pbc_crops, passes=6, seed=3)[1]
    second = model.predict_with_bald(pbc_crops, passes=6, seed=3)[1]
    np.testing.assert_array_equal(first, second)


def test_mc_dropout_keeps_batch_norm_frozen(pbc_crops):
    import torch

    model = load_model(default_model_path())
    before = model.network.features[1].running_mean.clone()
    batch = to_tensor(pbc_crops, model.card["normalization"])
    with torch.inference_mode():
        samples = mc_dropout_samples(model.network, batch, passes=3)
    assert samples.shape == (3, len(pbc_crops), len(model.classes))
    assert not model.network.training
    assert torch.equal(model.network.features[1].running_mean, before)


def test_bald_needs_two_passes(pbc_crops):
    model = load_model(default_model_path())
    with pytest.raises(ValueError, match="at least 2"):
        model.predict_with_bald(pbc_crops, passes=1)


@pytest.mark.parametrize("device, on_gpu", [("cuda", True), ("cuda:1", True), ("cpu", False),
                                            ("mps", False)])
def test_device_options_by_name(device, on_gpu):
    options = device_options(device)
    assert options["autocast"] is on_gpu
    assert options["pin_memory"] is on_gpu
    assert options["non_blocking"] is on_gpu


def test_auto_device_prefers_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == "cuda"
    assert select_device("cuda:0") == "cuda:0"


def test_cuda_request_without_gpu_is_clear(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cpu"):
        select_device("cuda")


def test_clip_region_to_slide():
    assert clip_region((-10, 5, 900, 700), (480, 640)) == (0, 5, 480, 640)
    assert clip_region(None, (480, 640)) == (0, 0, 480, 640)


def test_region_outside_slide_raises():
    with pytest.raises(ValueError, match="outside the slide"):
        clip_region((500, 0, 600, 10), (480, 640))


def test_region_keeps_cells_inside(field, tmp_path):
    with Project(tmp_path / "p") as project:
        whole = predict_slide(project, field, device="cpu")
        table = project.cell_table(whole["slide_id"])
    assert len(table) >= 1
    row, col = table[["row", "col"]].to_numpy()[0]
    # A band of 400 px (about 35 µm) across the first cell, so that the cell lies whole in it.
    region = (0, int(col) - 200, 480, int(col) + 200)
    with Project(tmp_path / "q") as project:
        part = predict_slide(project, field, device="cpu", region=region)
        inside = project.cell_table(part["slide_id"])[["row", "col"]].to_numpy()
    assert len(inside) >= 1
    assert (inside[:, 0] >= region[0]).all()
    assert (inside[:, 0] < region[2]).all()
    assert (inside[:, 1] >= region[1]).all()
    assert (inside[:, 1] < region[3]).all()


def test_bald_stored_in_cell_table(field, tmp_path):
    with Project(tmp_path / "p") as project:
        result = predict_slide(project, field, device="cpu", bald_passes=5)
        table = project.cell_table(result["slide_id"])
    assert result["bald"] is True
    assert table["bald"].notna().all()
    assert (table["bald"] >= 0).all()


def test_bald_column_nan_without_passes(field, tmp_path):
    with Project(tmp_path / "p") as project:
        result = predict_slide(project, field, device="cpu")
        table = project.cell_table(result["slide_id"])
    assert "bald" in table
    assert table["bald"].isna().all()


def test_queue_scores_from_cell_table(field, tmp_path):
    import json

    with Project(tmp_path / "p") as project:
        result = predict_slide(project, field, device="cpu")
        table = project.cell_table(result["slide_id"])
    probabilities = [list(json.loads(text).values()) for text in table["probabilities"]]
    entropy = score(probabilities, "entropy")
    assert entropy.shape == (len(table),)
    assert (entropy >= 0).all()


@pytest.fixture(scope="module")
def client():
    """A dask.distributed client of a local cluster with one in-process worker thread."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as connected:
        yield connected


def _fields(data_root):
    return [data_root / "bccd" / "BCCD" / "JPEGImages" / f"{name}.jpg" for name in FIELDS]


def test_cluster_predict_matches_local(data_root, tmp_path, client):
    from napari_alma.learning.cluster import predict_on_cluster

    fields = _fields(data_root)
    with Project(tmp_path / "cluster") as project:
        results = predict_on_cluster(project, fields, client, device="cpu")
        remote = [len(project.cell_table(r["slide_id"])) for r in results]
    with Project(tmp_path / "local") as project:
        local = [len(project.cell_table(predict_slide(project, f, device="cpu")["slide_id"]))
                 for f in fields]
    assert len(results) == len(fields)
    assert remote == local
    assert min(remote) >= 1


def test_cluster_cancel_keeps_stored_slides(data_root, tmp_path, client):
    from napari_alma.learning.cluster import predict_on_cluster
    from napari_alma.learning.predict import PredictionCancelled

    with Project(tmp_path / "p") as project:
        with pytest.raises(PredictionCancelled, match="after 1 of 2"):
            predict_on_cluster(project, _fields(data_root), client, device="cpu",
                               cancel=lambda: True)
        stored = [len(project.cell_table(s)) for s in project.slides()["slide_id"]]
    assert sorted(stored)[-1] >= 1
