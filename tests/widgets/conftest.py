"""Fixtures for the review docks: a real BCCD field with its annotated cells in a project."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from napari_alma.slides.reader import fingerprint, open_slide
from napari_alma.store.project import Project

FIELD = "BloodImage_00000"
READER = "tester"
MODEL_CLASSES = ["NGS", "LYT", "EOS", "MON", "OTH"]


def annotated_centres(xml_path):
    """Return the (row, col) centres of the VOC boxes of a BCCD annotation file."""
    centres = []
    for box in ET.parse(xml_path).getroot().iter("bndbox"):
        x_min, y_min, x_max, y_max = (float(box.find(tag).text)
                                      for tag in ("xmin", "ymin", "xmax", "ymax"))
        centres.append(((y_min + y_max) / 2, (x_min + x_max) / 2))
    return np.asarray(centres, dtype=float)


@pytest.fixture
def field_path(data_root):
    return data_root / "bccd" / "BCCD" / "JPEGImages" / f"{FIELD}.jpg"


@pytest.fixture
def project_with_cells(tmp_path, data_root, field_path):
    """A project holding the BCCD field's annotated boxes as model predictions."""
    project = Project(tmp_path / "project")
    slide = open_slide(field_path)
    slide_id = project.register_slide(
        field_path.resolve(), fingerprint(field_path), tuple(slide.shape[:2])
    )
    centres = annotated_centres(data_root / "bccd" / "BCCD" / "Annotations" / f"{FIELD}.xml")
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(len(MODEL_CLASSES)), size=len(centres))
    project.add_predictions(slide_id, centres, probabilities, MODEL_CLASSES, "test-model", 5.0)
    yield project, slide_id
    project.close()


@pytest.fixture
def review(make_napari_viewer, project_with_cells, field_path):
    """A viewer showing the BCCD field under review, with the three docks."""
    from napari_alma.widgets.launch import open_in_viewer

    project, slide_id = project_with_cells
    viewer = make_napari_viewer()
    session = open_in_viewer(viewer, field_path, project.folder, reader=READER, predict=False)
    yield session
    session.project.close()



def save_tiny_model(folder, version, classes=("NGS", "LYT", "EOS", "MON")):
    """Write an untrained classifier folder: real format, random weights, fast on CPU."""
    import torch

    from napari_alma.learning.model import (
        CARD_FORMAT,
        CARD_FORMAT_VERSION,
        architecture_params,
        build_network,
        save_model,
    )

    torch.manual_seed(0)
    widths = (4, 8, 8, 8)
    card = {
        "format": CARD_FORMAT, "format_version": CARD_FORMAT_VERSION, "version": version,
        "parent_version": None, "scheme": "bone_marrow", "classes": list(classes),
        "input_um": 20.0, "input_px": 24,
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "architecture": architecture_params(widths),
    }
    return save_model(build_network(len(classes), widths=widths), card, folder)
