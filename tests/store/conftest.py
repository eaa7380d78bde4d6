"""A reviewed project shared by the format, import and export tests."""

import numpy as np
import pytest

from napari_alma.store.project import Project

SLIDE_PATH = "/hospital/Pérez García ñ 2026-0042.tif"
EMPTY_SLIDE_PATH = "/hospital/vacía.tif"
SHAPE = (300, 400)
MPP = 0.5
CLASSES = ["NGS", "LYT", "EBO"]
POSITIONS = [[10.0, 20.0], [100.25, 200.75], [150.1, 30.3], [290.0, 390.0]]
PROBABILITIES = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.25, 0.25, 0.5], [0.6, 0.3, 0.1]]


def register_slides(project):
    """Register the two test slides (same fingerprints in every project); return their ids."""
    slide_id = project.register_slide(SLIDE_PATH, "fp-reviewed", SHAPE, mpp=MPP)
    empty_id = project.register_slide(EMPTY_SLIDE_PATH, "fp-empty", SHAPE, mpp=MPP)
    return slide_id, empty_id


@pytest.fixture
def reviewed(tmp_path):
    """A project with one reviewed slide and one empty slide: (project, slide id, empty id).

    Cell 1 is corrected, 2 confirmed, 3 deleted, 4 unreviewed and 5 added by the reader.
    """
    project = Project(tmp_path / "reviewed")
    slide_id, empty_id = register_slides(project)
    project.add_predictions(slide_id, np.array(POSITIONS), np.array(PROBABILITIES), CLASSES,
                            "m1", radius=2.0)
    project.label_cells(slide_id, [1], "LYT", reader="ana")
    project.review_cells(slide_id, [2], reader="ana")
    project.delete_cells(slide_id, [3], reader="ana")
    project.add_cell(slide_id, 200.5, 300.125, "BLA", reader="ana")
    yield project, slide_id, empty_id
    project.close()


@pytest.fixture
def fresh(tmp_path):
    """A second project with the same slides registered and no cells: (project, ids)."""
    project = Project(tmp_path / "fresh")
    ids = register_slides(project)
    yield project, ids
    project.close()
