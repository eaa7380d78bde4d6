"""Shared fixtures: where the real annotated images live."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_data_root() -> Path | None:
    candidates = [os.environ.get("ALMA_TEST_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder with the real annotated images (``../shared/data`` or ``$ALMA_TEST_DATA``)."""
    root = _find_data_root()
    if root is None:
        pytest.fail(
            "Real test images not found: set ALMA_TEST_DATA to the folder holding "
            "bccd/, pbc_wbc_yolo/ and segpc2021_bm_plasma_cells/, or place it at ../shared/data."
        )
    return root


@pytest.fixture(autouse=True)
def user_config_folder(tmp_path_factory, monkeypatch) -> Path:
    """Keep every test away from the real user's saved keys and language."""
    folder = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("ALMA_CONFIG_DIR", str(folder))
    return folder
