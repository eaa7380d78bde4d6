"""Fixtures of the report tests."""

import pytest

from napari_alma.store.project import Project


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "project") as project:
        yield project
