"""The learning commands end to end: cluster prediction, BALD, export split, retraining."""

import json

import pytest

from napari_alma.cli import main

FIELDS = ("BloodImage_00000", "BloodImage_00005")


@pytest.fixture
def fields(data_root):
    return [str(data_root / "bccd" / "BCCD" / "JPEGImages" / f"{name}.jpg") for name in FIELDS]


def test_predict_on_scheduler_address(fields, tmp_path, capsys):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        status = main(["predict", *fields, "--project", str(tmp_path / "p"), "--device", "cpu",
                       "--scheduler", cluster.scheduler_address, "--bald", "4", "--json"])
    slides = json.loads(capsys.readouterr().out)["slides"]
    assert status == 0
    assert len(slides) == 2
    assert all(slide["bald"] for slide in slides)
    assert all(len(slide["new"]) >= 1 for slide in slides)


def test_bald_of_one_pass_is_rejected(fields, tmp_path, capsys):
    status = main(["predict", fields[0], "--project", str(tmp_path / "p"), "--bald", "1"])
    assert status == 2
    assert "at least 2" in capsys.readouterr().err
