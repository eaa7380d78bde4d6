"""Cases (the smears of one sample) and the project's class scheme."""

from pathlib import Path

import numpy as np
import pytest

import napari_alma.core
from napari_alma.core.scheme import SchemeError, load_scheme
from napari_alma.store.project import SCHEME_COPY_NAME, Project, StoreError


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "project") as project:
        yield project


def predicted_slide(project, name, codes):
    """Register a slide whose cells the model predicted as ``codes``, one cell each."""
    slide_id = project.register_slide(f"/data/{name}.tif", f"fp-{name}", (1000, 1000))
    classes = sorted(set(codes))
    positions = np.array([[20.0 * (i // 40), 20.0 * (i % 40)] for i in range(len(codes))])
    probabilities = np.eye(len(classes))[[classes.index(code) for code in codes]]
    project.add_predictions(slide_id, positions, probabilities, classes, "m1", radius=5.0)
    return slide_id


def test_set_case_groups_slides(project):
    first = predicted_slide(project, "a", ["NGS"])
    second = predicted_slide(project, "b", ["NGS"])
    project.set_case(first, " C-7 ")
    project.set_case(second, "C-7")
    assert project.case_slides("C-7") == [first, second]
    assert project.slide(first)["case_id"] == "C-7"
    assert project.cases().to_dict("records") == [{"case_id": "C-7",
                                                    "slides": f"{first},{second}"}]


def test_clear_case(project):
    slide_id = predicted_slide(project, "a", ["NGS"])
    project.set_case(slide_id, "C-1")
    project.set_case(slide_id, None)
    assert project.slide(slide_id)["case_id"] is None
    assert project.cases().empty


def test_unknown_case_names_the_fix(project):
    with pytest.raises(StoreError, match="napari-alma case"):
        project.case_slides("nope")


def test_set_case_of_unknown_slide_rejected(project):
    with pytest.raises(StoreError, match="S-missing"):
        project.set_case("S-missing", "C-1")


def test_count_case_sums_slides(project):
    first = predicted_slide(project, "a", ["BLA"] * 20 + ["NGS"] * 280)
    second = predicted_slide(project, "b", ["BLA"] * 4 + ["EBO"] * 196 + ["ART"] * 3)
    for slide_id in (first, second):
        project.set_case(slide_id, "C-1")
    case = project.count_case("C-1", target=500)
    assert [slide.slide_id for slide in case.slides] == [first, second]
    assert case.differential.total_counted == 500
    assert case.differential.blast_percent == pytest.approx(4.8)
    assert case.differential.me_ratio == pytest.approx(304 / 196)
    assert case.differential.excluded["ART"] == 3
    assert case.differential.unreviewed == 503


def test_use_user_scheme_is_copied_and_kept(project, tmp_path):
    bundled = Path(napari_alma.core.__file__).parent / "schemes" / "bone_marrow.yaml"
    source = tmp_path / "lab.yaml"
    source.write_text(bundled.read_text(encoding="utf-8").replace("name: bone_marrow",
                                                                   "name: lab"),
                      encoding="utf-8")
    scheme = project.use_scheme(source)
    source.unlink()
    assert scheme.name == "lab"
    assert (project.folder / SCHEME_COPY_NAME).is_file()
    assert project.get_meta("scheme_origin") == str(source)
    with Project(project.folder) as reopened:
        assert reopened.scheme.name == "lab"


def test_use_bundled_scheme_by_name(project):
    project.use_scheme("peripheral_blood")
    assert project.get_meta("scheme") == "peripheral_blood"
    with Project(project.folder) as reopened:
        assert reopened.scheme.specimen == "peripheral_blood"


def test_scheme_lacking_stored_classes_named(project):
    predicted_slide(project, "a", ["NGS", "MGK", "PEB"])
    with pytest.raises(SchemeError, match="carry: MGK, PEB"):
        project.use_scheme("peripheral_blood")
    assert project.scheme.name == "bone_marrow"


def test_set_case_logged_as_slide_event(project):
    slide_id = predicted_slide(project, "a", ["NGS"])
    project.set_case(slide_id, "C-9", reader="ana")
    logged = project.slide_events(slide_id, "set_case")
    assert logged["reader"].tolist() == ["ana"]
    assert logged["detail"].tolist() == [{"case_id": "C-9"}]


def test_new_project_keeps_scheme_file(tmp_path):
    bundled = Path(napari_alma.core.__file__).parent / "schemes" / "bone_marrow.yaml"
    source = tmp_path / "lab.yaml"
    source.write_text(bundled.read_text(encoding="utf-8").replace("name: bone_marrow",
                                                                   "name: lab"),
                      encoding="utf-8")
    Project(tmp_path / "new", scheme=load_scheme(source)).close()
    source.unlink()
    with Project(tmp_path / "new") as reopened:
        assert reopened.scheme.name == "lab"


def test_count_case_sums_unadjudicated(project):
    first = predicted_slide(project, "a", ["NGS"] * 3)
    second = predicted_slide(project, "b", ["NGS"] * 2)
    for slide_id in (first, second):
        project.set_case(slide_id, "C-2")
        project.label_cells(slide_id, [1], "BLA", reader="ana")
        project.label_cells(slide_id, [1], "LYT", reader="luis")
    case = project.count_case("C-2")
    assert case.differential.unadjudicated == 2
    assert "unadjudicated" in case.differential.warnings
