"""Exports: de-identified by default, atomic, and safe when the disk refuses the write."""

import json
import os
import sqlite3

import pytest

from napari_alma.store.exports import EXPORT_FORMATS, export_project
from napari_alma.store.project import Project, StoreError

from .conftest import SLIDE_PATH

FILE_NAME_PARTS = ["Pérez", "García", "2026-0042", "/hospital"]


def _exported_bytes(summary) -> bytes:
    return b"".join(open(path, "rb").read() for path in summary["files"])


@pytest.mark.parametrize("file_format", EXPORT_FORMATS)
def test_export_omits_file_name(reviewed, tmp_path, file_format):
    project, slide_id, _ = reviewed
    data = _exported_bytes(export_project(project, file_format, tmp_path / "out"))

    assert slide_id.encode() in data
    for part in FILE_NAME_PARTS:
        assert part.encode("utf-8") not in data, part
        assert json.dumps(part)[1:-1].encode() not in data, part


@pytest.mark.parametrize("file_format", EXPORT_FORMATS)
def test_identify_adds_file_name(reviewed, tmp_path, file_format):
    project, _, _ = reviewed
    summary = export_project(project, file_format, tmp_path / "out", identify=True)
    data = _exported_bytes(summary)

    assert summary["identified"] is True
    assert os.path.basename(SLIDE_PATH).encode("utf-8") in data


def test_export_refuses_to_overwrite(reviewed, tmp_path):
    project, _, _ = reviewed
    export_project(project, "csv", tmp_path / "out")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_project(project, "csv", tmp_path / "out")
    assert export_project(project, "csv", tmp_path / "out", overwrite=True)["cells"] == 4


def test_failed_export_leaves_old_file(reviewed, tmp_path, monkeypatch):
    project, _, _ = reviewed
    summary = export_project(project, "csv", tmp_path / "out")
    before = open(summary["files"][0], "rb").read()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pandas.DataFrame.to_csv", full_disk)
    with pytest.raises(OSError, match="No space"):
        export_project(project, "csv", tmp_path / "out", overwrite=True)

    assert open(summary["files"][0], "rb").read() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cells.csv"]


def _limit_growth(project):
    """Make the database file unable to grow, as on a full disk."""
    pages = project._connection.execute("PRAGMA page_count").fetchone()[0]
    project._connection.execute(f"PRAGMA max_page_count={pages}")


def _integrity(folder):
    connection = sqlite3.connect(folder / "alma.sqlite")
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def test_full_disk_reported_and_store_intact(reviewed):
    project, slide_id, _ = reviewed
    events_before = project.events(slide_id)
    _limit_growth(project)
    with pytest.raises(StoreError) as caught:
        for number in range(2000):
            project.add_cell(slide_id, 1.0, float(number % 390), "BLA", reader="luis")

    assert "full" in str(caught.value)
    assert "free disk space" in str(caught.value)
    with Project(project.folder) as reopened:
        events = reopened.events(slide_id)
    assert _integrity(project.folder) == "ok"
    assert events.iloc[: len(events_before)].equals(events_before)
    assert set(events["reader"].iloc[len(events_before):]) <= {"luis"}


def test_read_only_database_reported(reviewed):
    project, slide_id, _ = reviewed
    before = project.events(slide_id)
    project._connection.execute("PRAGMA query_only=ON")
    with pytest.raises(StoreError) as caught:
        project.label_cells(slide_id, [1], "BLA", reader="luis")
    project._connection.execute("PRAGMA query_only=OFF")

    assert "read-only" in str(caught.value)
    assert project.events(slide_id).equals(before)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="file permissions do not stop root from writing")
def test_read_only_folder_reported(reviewed):
    project, slide_id, _ = reviewed
    folder = project.folder
    project.close()
    modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
    try:
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        with pytest.raises(StoreError):
            with Project(folder) as read_only:
                read_only.label_cells(slide_id, [1], "BLA", reader="luis")
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert _integrity(folder) == "ok"


def test_differential_summary_counts_cells(reviewed, tmp_path):
    project, slide_id, _ = reviewed
    summary = export_project(project, "differential", tmp_path / "out")
    # Live cells: 1 corrected, 2 confirmed, 4 unreviewed (its prediction counts), 5 added.
    assert summary["cells"] == 4
