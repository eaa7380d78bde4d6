"""The HTML and PDF report, checked for its numbers in English and Spanish."""

import math
import re
import sqlite3

import pytest
from report_page import MARROW, ReportPage, store_slide

from napari_alma import __version__
from napari_alma.report.content import case_report, slide_report
from napari_alma.report.html import render_html, write_html
from napari_alma.report.pdf import render_pdf

READER = "Dra. <Ruiz> & co"


def wilson_text(k, n, z=1.959964):
    """Return the 95% Wilson interval of k/n in percent as "low-high", computed by hand."""
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return f"{100 * (centre - half):.1f}-{100 * (centre + half):.1f}"


@pytest.fixture
def marrow(project):
    slide_id = store_slide(project, "patient-name-smear", MARROW)
    project.review_cells(slide_id, [1, 2], reader=READER)
    return project, slide_id


def page(project, slide_id, lang, **settings):
    return ReportPage(render_html(slide_report(project, slide_id, **settings), lang))


def test_english_table_numbers(marrow):
    project, slide_id = marrow
    report = page(project, slide_id, "en")
    assert report.row("counts", "BLA") == ["blast", "BLA", "24", "4.8", wilson_text(24, 500)]
    assert report.row("counts", "NGS") == ["segmented neutrophil", "NGS", "300", "60.0",
                                           wilson_text(300, 500)]
    assert report.row("counts", "MON")[2:4] == ["76", "15.2"]
    assert report.row("excluded", "KSC") == ["smudge cell", "KSC", "3"]


def test_english_summary(marrow):
    project, slide_id = marrow
    report = page(project, slide_id, "en")
    low, high = wilson_text(24, 500).split("-")
    assert report.lang == "en"
    assert report.by_id["blast-percent"] == f"Blasts: 4.8% (95% CI {low}-{high}%)"
    assert report.by_id["me-ratio"] == f"M:E ratio: {(24 + 300 + 76) / 100:.2f}:1"
    assert report.by_id["total-counted"] == "Counted: 500 of 500 cells"
    assert report.by_id["unreviewed"] == "Not reviewed yet: 501 cells"


def test_english_hints_and_warnings(marrow):
    project, slide_id = marrow
    report = page(project, slide_id, "en")
    assert report.by_id["who-hint"] == "WHO 2022: blasts < 5%"
    assert report.by_id["icc-hint"] == "ICC 2022: blasts < 5%"
    assert "genetics and clinical data decide the category" in report.by_id["hint-disclaimer"]
    assert ("The blast % interval crosses 5%: count more cells or ask for a second read."
            in report.by_id["warnings"])


def test_english_provenance(marrow):
    project, slide_id = marrow
    report = page(project, slide_id, "en")
    assert report.by_id["subject"] == slide_id
    assert report.by_id["readers"] == READER
    assert report.by_id["model-version"] == "m1"
    assert report.by_id["signoff"] == "Not signed off"
    assert f"napari-alma {__version__}" in report.by_id["generated"]
    assert "svg" in report.tags
    assert "script" not in report.tags


def test_file_name_never_shown(marrow):
    project, slide_id = marrow
    html = render_html(slide_report(project, slide_id), "en")
    assert "patient-name-smear" not in html
    assert "/private" not in html


def test_reader_name_escaped(marrow):
    project, slide_id = marrow
    html = render_html(slide_report(project, slide_id), "en")
    assert "Dra. &lt;Ruiz&gt; &amp; co" in html
    assert "<Ruiz>" not in html


def test_spanish_numbers_and_words(marrow):
    project, slide_id = marrow
    report = page(project, slide_id, "es", me_convention="no-monocytes")
    low, high = wilson_text(24, 500).split("-")
    assert report.lang == "es"
    assert report.row("counts", "BLA") == ["blasto", "BLA", "24", "4.8", wilson_text(24, 500)]
    assert report.by_id["blast-percent"] == f"Blastos: 4.8% (IC 95% {low}-{high}%)"
    assert report.by_id["me-ratio"] == f"Relación M:E: {(24 + 300) / 100:.2f}:1"
    assert report.by_id["who-hint"] == "OMS 2022: blastos < 5%"
    assert "la genética y los datos clínicos deciden" in report.by_id["hint-disclaimer"]
    assert report.by_id["signoff"] == "Sin firmar"
    assert "Relación M:E sin monocitos" in report.by_id["conventions"]


def test_blast_equivalents_stated(marrow):
    project, slide_id = marrow
    report = page(project, slide_id, "en", blast_equivalents=["promonocytes"])
    assert "Blast equivalents counted as blasts: promonocytes" in report.by_id["conventions"]


def add_signoff_events(project, rows):
    """Store sign-off events with chosen times, as the slide log stores them."""
    with sqlite3.connect(project.database_path) as connection:
        connection.executemany("INSERT INTO slide_events (slide_id, reader, time, action) "
                               "VALUES (?, ?, ?, ?)", rows)


def test_signoff_shown(marrow):
    project, slide_id = marrow
    add_signoff_events(project, [(slide_id, "ana", "2026-01-02T10:11:12.000001+00:00",
                                  "finalise")])
    report = page(project, slide_id, "en")
    assert report.by_id["signoff"] == "Signed off by ana at 2026-01-02 10:11:12 (UTC)"


def test_reopened_slide_not_signed(marrow):
    project, slide_id = marrow
    add_signoff_events(project, [
        (slide_id, "ana", "2026-01-02T10:11:12+00:00", "finalise"),
        (slide_id, "ana", "2026-01-02T11:00:00+00:00", "reopen"),
    ])
    assert page(project, slide_id, "en").by_id["signoff"] == "Not signed off"


def test_every_cell_excluded(project):
    slide_id = store_slide(project, "empty", ["ART"] * 4 + ["KSC"] * 2)
    report = page(project, slide_id, "en")
    assert report.by_id["total-counted"] == "Counted: 0 of 500 cells"
    assert report.by_id["blast-percent"] == "Blasts: no cells counted"
    assert report.by_id["me-ratio"] == "M:E ratio: no erythroblasts counted"
    assert report.by_id["who-hint"] == "No cells counted, so no band."
    assert report.row("excluded", "ART")[2] == "4"
    assert "chart" not in report.by_id


def test_zero_cells(project):
    slide_id = project.register_slide("/private/blank.tif", "fp-blank", (100, 100))
    report = page(project, slide_id, "es")
    assert report.by_id["total-counted"] == "Contadas: 0 de 500 células"
    assert report.by_id["model-version"] == "ninguno"
    assert "Aún no hay células contadas." in report.by_id["warnings"]


def test_case_lists_its_slides(project):
    first = store_slide(project, "one", ["BLA"] * 20 + ["NGS"] * 280)
    second = store_slide(project, "two", ["BLA"] * 4 + ["EBO"] * 196)
    for slide_id in (first, second):
        project.set_case(slide_id, "C<1>")
    report = ReportPage(render_html(case_report(project, "C<1>"), "en"))
    assert report.by_id["subject"] == "C<1>"
    assert report.row("counts", "BLA")[2:5] == ["24", "4.8", wilson_text(24, 500)]
    rows = report.tables["slides"][1:]
    assert [row[0] for row in rows] == [first, second]
    assert [row[2] for row in rows] == ["300", "200"]
    assert report.by_id["signoff"] == "Not signed off: 0 of 2 slides signed"
    assert "at least two smears" not in report.by_id["warnings"]


def test_case_of_one_smear_warned(project):
    project.set_case(store_slide(project, "one", MARROW), "C1")
    report = ReportPage(render_html(case_report(project, "C1"), "en"))
    assert "at least two smears" in report.by_id["warnings"]


def test_blood_report(project):
    project.use_scheme("peripheral_blood")
    slide_id = store_slide(project, "blood", ["BLA"] * 6 + ["NGS"] * 194 + ["EBO"] * 9)
    report = page(project, slide_id, "en")
    assert report.by_id["me-ratio"] == "M:E ratio: not reported for peripheral blood"
    assert report.by_id["who-hint"] == "WHO 2022 (blood): 2-4% (MDS-IB1 range)"
    assert report.by_id["icc-hint"] == "ICC 2022 (blood): 2-9% (MDS with excess blasts range)"
    assert report.by_id["specimen"] == "Peripheral blood"
    assert ("nucleated red cell (erythroblast): 4.5 per 100 counted cells"
            in report.by_id["summary"])


def test_written_whole(marrow, tmp_path):
    project, slide_id = marrow
    target = tmp_path / "out" / "report.html"
    write_html(slide_report(project, slide_id), target, lang="en")
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [path.name for path in target.parent.iterdir()] == ["report.html"]


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def test_pdf_pages(marrow):
    project, slide_id = marrow
    pdf = render_pdf(slide_report(project, slide_id), "es")
    assert pdf.startswith(b"%PDF-")
    # Two A4 pages of text and table, then the chart on its own page.
    assert pdf_pages(pdf) == 3


def test_pdf_without_cells_has_no_chart(project):
    slide_id = store_slide(project, "empty", ["ART"])
    assert pdf_pages(render_pdf(slide_report(project, slide_id), "en")) == 2


def test_signoff_same_time_follows_log_order(marrow):
    project, slide_id = marrow
    moment = "2026-01-02T10:11:12+00:00"
    add_signoff_events(project, [(slide_id, "ana", moment, "reopen"),
                                 (slide_id, "ana", moment, "finalise")])
    assert page(project, slide_id, "en").by_id["signoff"].startswith("Signed off by ana")
