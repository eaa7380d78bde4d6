"""The count dock's report button on a real BCCD field, under Xvfb."""

import sys
from pathlib import Path

import pytest
from qtpy.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from report_page import ReportPage  # noqa: E402

from napari_alma.widgets import count_dock  # noqa: E402

pytestmark = pytest.mark.gui


def test_report_button_writes_html(review, qtbot, tmp_path, monkeypatch):
    target = tmp_path / "reports" / "field report.html"
    asked = []

    def choose(parent, title, suggested):
        asked.append((title, suggested))
        return str(target)

    monkeypatch.setattr(count_dock, "ask_report_path", choose)
    review.select_ids([int(c) for c in review.cells_layer.features["cell_id"][:2]])
    review.apply_class("BLA")
    dock = review.docks["count"]
    qtbot.mouseClick(dock.report_button.native, Qt.MouseButton.LeftButton)
    assert dock.worker is not None
    qtbot.waitUntil(lambda: dock.worker is None, timeout=30_000)

    assert asked[0][1].name == f"report-{review.slide_id}.html"
    assert dock.report_status.value == f"Report saved to {target}"
    page = ReportPage(target.read_text(encoding="utf-8"))
    assert page.by_id["subject"] == review.slide_id
    assert page.row("counts", "BLA")[2] == "2"
    assert page.by_id["readers"] == "tester"
    assert "BloodImage" not in target.read_text(encoding="utf-8")
    assert dock.report_button.enabled


def test_report_dialog_cancelled(review, monkeypatch):
    monkeypatch.setattr(count_dock, "ask_report_path", lambda *_args: "")
    dock = review.docks["count"]
    assert dock.save_report() is None
    assert dock.report_status.value == ""


def test_report_failure_shown(review, qtbot, tmp_path, monkeypatch):
    occupied = tmp_path / "a folder.html"
    occupied.mkdir()
    monkeypatch.setattr(count_dock, "ask_report_path", lambda *_args: str(occupied))
    dock = review.docks["count"]
    dock.save_report()
    qtbot.waitUntil(lambda: dock.worker is None, timeout=30_000)
    assert dock.report_status.value.startswith("The report was not written:")
    assert list(occupied.parent.glob(".*.tmp")) == []
