"""Sign-off: refusal with reasons, read-only labels after it, and a logged reopening."""

import numpy as np
import pytest

from napari_alma.store import signoff, undo
from napari_alma.store.project import Project

CLASSES = ["NGS", "LYT", "EBO"]
READER = "ana"


@pytest.fixture
def slide(tmp_path):
    """Six cells: four confident (0.9), two uncertain (0.5)."""
    with Project(tmp_path / "project") as project:
        slide_id = project.register_slide("/data/field.jpg", "fp-1", (100, 200), mpp=0.5)
        positions = np.array([[10, 10 + 20 * i] for i in range(6)], dtype=float)
        probabilities = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.5, 0.3, 0.2]] * 2)
        project.add_predictions(slide_id, positions, probabilities, CLASSES, "m1", radius=5.0)
        yield project, slide_id


def test_refused_with_both_reasons(slide):
    project, slide_id = slide
    with pytest.raises(signoff.FinaliseRefusedError) as refused:
        signoff.finalise(project, slide_id, READER, target=300, threshold=0.8, lang="en")
    keys = [reason.key for reason in refused.value.reasons]
    assert keys == ["review_refused_uncertain", "review_refused_target"]
    assert "2 unreviewed cells" in str(refused.value)
    assert "6 counted cells, fewer than the target of 300" in str(refused.value)
    assert project.slide_events(slide_id).empty


def test_refusal_in_spanish(slide):
    project, slide_id = slide
    with pytest.raises(signoff.FinaliseRefusedError, match="Quedan 2 células sin revisar"):
        signoff.finalise(project, slide_id, READER, target=6, lang="es")


def test_finalise_once_uncertain_reviewed(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [5, 6], "LYT", READER)
    event_id = signoff.finalise(project, slide_id, READER, target=6, threshold=0.8)
    assert event_id > 0
    assert signoff.is_finalised(project, slide_id)
    logged = project.slide_events(slide_id, "finalise").iloc[0]
    assert logged["reader"] == READER
    assert logged["detail"]["total_counted"] == 6


@pytest.fixture
def finalised(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [5, 6], "LYT", READER)
    signoff.finalise(project, slide_id, READER, target=6)
    return project, slide_id


@pytest.mark.parametrize("change", [
    lambda p, s: p.label_cells(s, [1], "EBO", READER),
    lambda p, s: p.review_cells(s, [1], READER),
    lambda p, s: p.delete_cells(s, [1], READER),
    lambda p, s: p.add_cell(s, 50.0, 50.0, "NGS", READER),
    lambda p, s: undo.undo(p, s, READER),
    lambda p, s: p.add_predictions(s, np.array([[90.0, 190.0]]), np.array([[1.0, 0, 0]]),
                                   CLASSES, "m2", radius=5.0),
], ids=["label", "review", "delete", "add", "undo", "predict"])
def test_finalised_slide_is_read_only(finalised, change):
    project, slide_id = finalised
    events_before = len(project.events(slide_id))
    with pytest.raises(signoff.ReadOnlySlideError, match="finalised"):
        change(project, slide_id)
    assert len(project.events(slide_id)) == events_before


def test_reopen_is_logged_and_unlocks(finalised):
    project, slide_id = finalised
    signoff.reopen(project, slide_id, "blast count disputed", reader="ben")
    reopened = project.slide_events(slide_id, "reopen").iloc[0]
    assert reopened["reader"] == "ben"
    assert reopened["detail"] == {"reason": "blast count disputed"}
    assert not signoff.is_finalised(project, slide_id)
    assert project.label_cells(slide_id, [1], "EBO", READER) == 1


def test_reopen_needs_reason(finalised):
    project, slide_id = finalised
    with pytest.raises(signoff.StoreError, match="reason"):
        signoff.reopen(project, slide_id, "  ")


def test_reopen_of_open_slide_rejected(slide):
    project, slide_id = slide
    with pytest.raises(signoff.StoreError, match="not finalised"):
        signoff.reopen(project, slide_id, "why not")


def test_second_finalise_refused(finalised):
    project, slide_id = finalised
    with pytest.raises(signoff.FinaliseRefusedError, match="already finalised"):
        signoff.finalise(project, slide_id, READER, target=6)


def test_read_only_message_names_project(finalised):
    project, slide_id = finalised
    with pytest.raises(signoff.ReadOnlySlideError) as raised:
        project.label_cells(slide_id, [1], "EBO", READER)
    assert f"napari-alma reopen {project.folder} --slide {slide_id}" in str(raised.value)
