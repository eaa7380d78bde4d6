"""`finalise` and `reopen` on the command line, and `label` rejected on a finalised slide."""

import json

import numpy as np
import pytest

from napari_alma.cli import main
from napari_alma.store.project import Project

CLASSES = ["NGS", "LYT", "EBO"]


@pytest.fixture
def project(tmp_path):
    """A project with one slide of four cells, one of them uncertain (confidence 0.5)."""
    folder = tmp_path / "project"
    with Project(folder) as store:
        slide_id = store.register_slide("/data/field.jpg", "fp-1", (100, 200), mpp=0.5)
        positions = np.array([[10, 10 + 30 * i] for i in range(4)], dtype=float)
        probabilities = np.array([[0.9, 0.05, 0.05]] * 3 + [[0.5, 0.3, 0.2]])
        store.add_predictions(slide_id, positions, probabilities, CLASSES, "m1", radius=5.0)
    return str(folder), slide_id


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_finalise_refused_json(project, capsys):
    folder, slide_id = project
    status, out, _ = run(capsys, "finalise", folder, "--slide", slide_id, "--target", "300",
                         "--json")
    assert status == 1
    result = json.loads(out)
    assert result["finalised"] is False
    assert [r["reason"] for r in result["reasons"]] == ["uncertain", "target"]
    assert result["reasons"][0]["n"] == 1
    assert result["reasons"][1]["total"] == 4


def test_finalise_refused_text_in_spanish(project, capsys):
    folder, slide_id = project
    status, _, err = run(capsys, "finalise", folder, "--slide", slide_id, "--lang", "es")
    assert status == 1
    assert "Todavía no se puede finalizar" in err
    assert "menos que el objetivo de 500" in err


def test_finalise_label_reopen(project, capsys):
    folder, slide_id = project
    assert run(capsys, "label", folder, "--slide", slide_id, "--cell", "4", "--class", "LYT",
               "--reader", "ana")[0] == 0
    status, out, _ = run(capsys, "finalise", folder, "--slide", slide_id, "--target", "4",
                         "--reader", "ana", "--json")
    assert status == 0
    assert json.loads(out)["total_counted"] == 4

    status, _, err = run(capsys, "label", folder, "--slide", slide_id, "--cell", "1",
                         "--class", "EBO", "--reader", "ana")
    assert status == 2
    assert "read-only" in err

    status, out, _ = run(capsys, "reopen", folder, "--slide", slide_id, "--reason",
                         "recount requested", "--reader", "ben", "--json")
    assert status == 0
    assert json.loads(out)["reason"] == "recount requested"
    with Project(folder) as store:
        reopened = store.slide_events(slide_id, "reopen")
        assert list(reopened["reader"]) == ["ben"]
    assert run(capsys, "label", folder, "--slide", slide_id, "--cell", "1", "--class", "EBO",
               "--reader", "ana")[0] == 0


def test_reopen_needs_finalised_slide(project, capsys):
    folder, slide_id = project
    status, _, err = run(capsys, "reopen", folder, "--slide", slide_id, "--reason", "x")
    assert status == 2
    assert "not finalised" in err
