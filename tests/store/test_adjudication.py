"""Second reads in the store: blind-read events, reader agreement and adjudication."""

import numpy as np
import pytest

from napari_alma.store.project import Project, StoreError
from napari_alma.store.second_read import (
    adjudicate,
    compare_readers,
    default_pair,
    disagreement_table,
    end_second_read,
    is_reading_blind,
    readers_with_labels,
    second_readers,
    start_second_read,
)

CLASSES = ["NGS", "LYT", "EBO"]
PRIMARY = "ana"
SECOND = "bea"


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "project") as project:
        yield project


@pytest.fixture
def slide_id(project):
    """A slide of six predicted cells (all NGS by the model)."""
    slide_id = project.register_slide("/data/field.jpg", "fp-1", (100, 200), mpp=0.5)
    positions = np.array([[10, 10 + 20 * i] for i in range(6)], dtype=float)
    probabilities = np.tile([0.7, 0.2, 0.1], (len(positions), 1))
    project.add_predictions(slide_id, positions, probabilities, CLASSES, "m1", radius=5.0)
    return slide_id


def label_two_readers(project, slide_id):
    """Primary: cells 1-5 = BLA BLA LYT LYT EBO. Second: cells 1-4 and 6 = BLA LYT LYT EBO EBO."""
    for cell_id, code in zip(range(1, 6), ["BLA", "BLA", "LYT", "LYT", "EBO"]):
        project.label_cells(slide_id, [cell_id], code, reader=PRIMARY)
    start_second_read(project, slide_id, SECOND)
    for cell_id, code in zip([1, 2, 3, 4, 6], ["BLA", "LYT", "LYT", "EBO", "EBO"]):
        project.label_cells(slide_id, [cell_id], code, reader=SECOND)
    end_second_read(project, slide_id, SECOND)


def test_blind_read_logged_as_slide_events(project, slide_id):
    project.label_cells(slide_id, [1], "BLA", reader=PRIMARY)
    start_second_read(project, slide_id, SECOND)
    assert is_reading_blind(project, slide_id, SECOND)
    end_second_read(project, slide_id, SECOND)
    assert not is_reading_blind(project, slide_id, SECOND)
    actions = list(project.slide_events(slide_id)["action"])
    assert actions == ["start_second_read", "end_second_read"]
    assert second_readers(project, slide_id) == [SECOND]


def test_primary_reader_cannot_read_blind(project, slide_id):
    project.label_cells(slide_id, [1], "BLA", reader=PRIMARY)
    with pytest.raises(ValueError, match="primary reader"):
        start_second_read(project, slide_id, PRIMARY)


def test_second_read_keeps_labels_apart(project, slide_id):
    label_two_readers(project, slide_id)
    primary = project.cell_table(slide_id, reader=PRIMARY).set_index("cell_id")
    second = project.cell_table(slide_id, reader=SECOND).set_index("cell_id")
    assert primary.loc[2, "class"] == "BLA"
    assert second.loc[2, "class"] == "LYT"
    assert project.slide(slide_id)["primary_reader"] == PRIMARY


def test_default_pair_is_primary_then_second(project, slide_id):
    label_two_readers(project, slide_id)
    project.label_cells(slide_id, [1], "BLA", reader="carla")
    assert default_pair(project, slide_id) == (PRIMARY, SECOND)
    assert readers_with_labels(project, slide_id)[0] == PRIMARY


def test_agreement_needs_two_readers(project, slide_id):
    project.label_cells(slide_id, [1], "BLA", reader=PRIMARY)
    with pytest.raises(ValueError, match="needs two"):
        compare_readers(project, slide_id)


def test_compare_readers_counts(project, slide_id):
    label_two_readers(project, slide_id)
    agreement = compare_readers(project, slide_id)
    # Both labelled cells 1-4: BLA/BLA, BLA/LYT, LYT/LYT, LYT/EBO.
    # p_o = 2/4; A: BLA 2, LYT 2; B: BLA 1, LYT 2, EBO 1; p_e = (2*1 + 2*2 + 0*1)/16.
    p_o, p_e = 2 / 4, 6 / 16
    assert agreement.both == 4
    assert agreement.kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert agreement.only_a == [5]
    assert agreement.only_b == [6]
    assert list(agreement.disagreements["cell_id"]) == [2, 4]


def test_deleted_cells_leave_the_comparison(project, slide_id):
    label_two_readers(project, slide_id)
    project.delete_cells(slide_id, [2], reader=PRIMARY)
    agreement = compare_readers(project, slide_id)
    assert agreement.both == 3
    assert list(agreement.disagreements["cell_id"]) == [4]


def test_adjudication_changes_count(project, slide_id):
    label_two_readers(project, slide_id)
    before = project.count(slide_id)
    assert before.unadjudicated == 2
    assert "unadjudicated" in before.warnings
    assert before.counts["BLA"] == 2

    adjudicate(project, slide_id, [2], "LYT", reader="carla")
    after = project.count(slide_id)
    assert after.counts["BLA"] == 1
    assert after.counts["LYT"] == 3
    assert after.unadjudicated == 1


def test_adjudication_keeps_both_readers_labels(project, slide_id):
    label_two_readers(project, slide_id)
    adjudicate(project, slide_id, [2], "LYT", reader="carla")
    primary = project.cell_table(slide_id, reader=PRIMARY).set_index("cell_id")
    second = project.cell_table(slide_id, reader=SECOND).set_index("cell_id")
    assert primary.loc[2, "class"] == "BLA"
    assert second.loc[2, "class"] == "LYT"
    assert project.count(slide_id, reader=PRIMARY).counts["BLA"] == 2


def test_adjudicate_event_recorded(project, slide_id):
    label_two_readers(project, slide_id)
    adjudicate(project, slide_id, [4], "EBO", reader="carla")
    event = project.events(slide_id, cell_id=4).iloc[-1]
    assert event["action"] == "adjudicate"
    assert event["reader"] == "carla"
    assert event["old_class"] == "LYT"
    assert event["new_class"] == "EBO"
    assert project.slide(slide_id)["primary_reader"] == PRIMARY


def test_newest_adjudication_wins(project, slide_id):
    label_two_readers(project, slide_id)
    adjudicate(project, slide_id, [2], "LYT", reader="carla")
    adjudicate(project, slide_id, [2], "BLA", reader="carla")
    table = disagreement_table(project, slide_id, compare_readers(project, slide_id))
    assert table.set_index("cell_id").loc[2, "adjudicated"] == "BLA"
    assert project.count(slide_id).counts["BLA"] == 2


def test_adjudicate_rejects_unknown_class(project, slide_id):
    label_two_readers(project, slide_id)
    with pytest.raises(ValueError, match="not in scheme"):
        adjudicate(project, slide_id, [2], "XYZ", reader="carla")


def test_adjudicate_rejects_unknown_cell(project, slide_id):
    label_two_readers(project, slide_id)
    with pytest.raises(StoreError, match="99"):
        adjudicate(project, slide_id, [99], "BLA", reader="carla")


def test_blind_count_leaves_out_predictions(project, slide_id):
    label_two_readers(project, slide_id)
    blind = project.count(slide_id, reader=SECOND, labelled_only=True)
    assert blind.total_counted == 5
    assert blind.counts["NGS"] == 0
    assert blind.unreviewed == 1


def test_adjudication_refused_after_finalise(project, slide_id):
    from napari_alma.store import signoff

    label_two_readers(project, slide_id)
    project.record_slide_event(slide_id, "finalise", PRIMARY)
    with pytest.raises(signoff.ReadOnlySlideError):
        adjudicate(project, slide_id, [2], "LYT", reader="carla")
    signoff.reopen(project, slide_id, "second read settled", PRIMARY)
    assert adjudicate(project, slide_id, [2], "LYT", reader="carla") == 1


def test_agreed_cell_not_adjudicated(project, slide_id):
    label_two_readers(project, slide_id)
    events_before = len(project.events(slide_id))
    # Cell 1: both readers labelled it BLA. Cell 5: only the primary reader labelled it.
    with pytest.raises(StoreError, match=r"cells \[1, 5\] are not a disagreement"):
        adjudicate(project, slide_id, [1, 2, 5], "LYT", reader="carla")
    assert len(project.events(slide_id)) == events_before
