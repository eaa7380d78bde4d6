"""The agreement and adjudicate commands on a project with two readers."""

import json

import numpy as np
import pytest

from napari_alma.cli import main
from napari_alma.store.project import Project


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def two_readers(tmp_path):
    """A project slide whose four cells ana and bea classed; they disagree on cells 2 and 4."""
    folder = tmp_path / "project"
    with Project(folder) as project:
        slide_id = project.register_slide("/data/field.jpg", "fp-1", (100, 200), mpp=0.5)
        positions = np.array([[10, 10], [10, 40], [10, 70], [10, 100]], dtype=float)
        probabilities = np.tile([0.7, 0.3], (4, 1))
        project.add_predictions(slide_id, positions, probabilities, ["NGS", "LYT"], "m1", 5.0)
        for cell_id, (first, second) in enumerate(
            [("BLA", "BLA"), ("BLA", "LYT"), ("LYT", "LYT"), ("LYT", "EBO")], start=1
        ):
            project.label_cells(slide_id, [cell_id], first, reader="ana")
            project.label_cells(slide_id, [cell_id], second, reader="bea")
    return str(folder), slide_id


def test_agreement_json(two_readers, capsys):
    folder, slide_id = two_readers
    result = run_json(capsys, "agreement", folder, "--slide", slide_id)
    p_o, p_e = 2 / 4, (2 * 1 + 2 * 2) / 16
    assert result["readers"] == ["ana", "bea"]
    assert result["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e))
    assert [row["cell_id"] for row in result["disagreements"]] == [2, 4]
    assert result["unadjudicated"] == 2
    assert result["counts"][0]["blast_percent"] == pytest.approx(50.0)


def test_agreement_text_in_spanish(two_readers, capsys):
    folder, slide_id = two_readers
    assert main(["agreement", folder, "--slide", slide_id, "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert "Kappa de Cohen" in text
    assert "Discrepancias: 2" in text


def test_agreement_unknown_reader(two_readers, capsys):
    folder, slide_id = two_readers
    assert main(["agreement", folder, "--slide", slide_id, "--readers", "ana", "zoe"]) == 2
    assert "zoe" in capsys.readouterr().err


def test_adjudicate_updates_count(two_readers, capsys):
    folder, slide_id = two_readers
    before = run_json(capsys, "count", folder, "--slide", slide_id)
    assert before["unadjudicated"] == 2
    result = run_json(capsys, "adjudicate", folder, "--slide", slide_id, "--cell", "2",
                      "--class", "lyt", "--reader", "carla")
    assert result["unadjudicated"] == 1
    after = run_json(capsys, "count", folder, "--slide", slide_id)
    assert after["counts"]["BLA"] == before["counts"]["BLA"] - 1
    assert after["counts"]["LYT"] == before["counts"]["LYT"] + 1


def test_count_text_names_open_disagreements(two_readers, capsys):
    folder, slide_id = two_readers
    assert main(["count", folder, "--slide", slide_id, "--lang", "en"]) == 0
    assert "2 cells classified differently" in capsys.readouterr().out
