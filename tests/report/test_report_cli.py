"""The `case`, `count --case` and `report` commands on projects with known classes."""

import json

import pytest
from report_page import MARROW, ReportPage, store_slide

from napari_alma.cli import main
from napari_alma.demo import sample_path
from napari_alma.store.project import Project


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def two_smears(tmp_path):
    folder = tmp_path / "project"
    with Project(folder) as project:
        first = store_slide(project, "one", ["BLA"] * 20 + ["NGS"] * 280)
        second = store_slide(project, "two", ["BLA"] * 4 + ["EBO"] * 196)
    return folder, first, second


def test_case_command_assigns_and_lists(two_smears, capsys):
    folder, first, second = two_smears
    result = run_json(capsys, "case", str(folder), "--slide", first, second, "--set", "C-1")
    assert result["cases"] == [{"case_id": "C-1", "slides": f"{first},{second}"}]
    cleared = run_json(capsys, "case", str(folder), "--slide", second, "--clear")
    assert cleared["cases"] == [{"case_id": "C-1", "slides": first}]


def test_case_set_needs_slide(two_smears, capsys):
    folder, _first, _second = two_smears
    assert main(["case", str(folder), "--set", "C-1"]) == 2
    assert "--slide" in capsys.readouterr().err


def test_count_case_lists_slides(two_smears, capsys):
    folder, first, second = two_smears
    main(["case", str(folder), "--slide", first, second, "--set", "C-1"])
    capsys.readouterr()
    counts = run_json(capsys, "count", str(folder), "--case", "C-1")
    assert counts["case_id"] == "C-1"
    assert counts["total_counted"] == 500
    assert counts["blast_percent"] == pytest.approx(4.8)
    assert [slide["total_counted"] for slide in counts["slides"]] == [300, 200]
    assert [slide["slide_id"] for slide in counts["slides"]] == [first, second]


def test_count_case_text_in_spanish(two_smears, capsys):
    folder, first, _second = two_smears
    main(["case", str(folder), "--slide", first, "--set", "C-2"])
    capsys.readouterr()
    assert main(["count", str(folder), "--case", "C-2", "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Caso C-2: 1 preparación(es)")
    assert f"{first}: 300 células contadas, blastos 6.7%" in text
    assert "al menos dos frotis" in text


def test_report_html_and_pdf(tmp_path, capsys):
    folder = tmp_path / "project"
    with Project(folder) as project:
        slide_id = store_slide(project, "smear", MARROW)
    out = tmp_path / "report.html"
    result = run_json(capsys, "report", str(folder), "--slide", slide_id, "--out", str(out),
                      "--lang", "es", "--pdf", "--target", "300")
    assert result["html"] == str(out)
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")
    page = ReportPage(out.read_text(encoding="utf-8"))
    assert page.lang == "es"
    assert page.by_id["total-counted"] == "Contadas: 500 de 300 células"
    assert page.row("counts", "BLA")[2:4] == ["24", "4.8"]


def test_report_keeps_existing_file(tmp_path, capsys):
    folder = tmp_path / "project"
    with Project(folder) as project:
        slide_id = store_slide(project, "smear", ["NGS"])
    out = tmp_path / "report.html"
    out.write_text("keep", encoding="utf-8")
    assert main(["report", str(folder), "--slide", slide_id, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "keep"


def test_report_needs_slide_or_case(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert "--slide" in capsys.readouterr().err


def test_report_pdf_out_rejected(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--slide", "S", "--out", str(tmp_path / "r.pdf"),
                 "--pdf"]) == 2
    assert "name the HTML file" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_into_blood_case(tmp_path, capsys):
    folder = tmp_path / "blood"
    result = run_json(capsys, "predict", str(sample_path()), "--project", str(folder),
                      "--scheme", "peripheral_blood", "--case", "B-1")
    assert result["slides"][0]["case_id"] == "B-1"
    counts = run_json(capsys, "count", str(folder), "--case", "B-1")
    assert counts["target"] == 200
    assert counts["conventions"]["specimen"] == "peripheral_blood"
    assert "single_smear" in counts["warnings"]
