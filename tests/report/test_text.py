"""Text of the differential count, in English and Spanish, without Qt."""

from napari_alma.core.counting import count_differential
from napari_alma.core.scheme import default_scheme
from napari_alma.report import text as count_text

SCHEME = default_scheme()


def differential(labels, **settings):
    return count_differential(labels, SCHEME, **settings)


def test_counted_rows_follow_counts():
    result = differential(["BLA"] * 5 + ["NGS"] * 95 + ["ART"] * 3)
    rows = {row[0]: row for row in count_text.counted_rows(result, SCHEME, "en")}
    assert rows["blast"][1:3] == ["5", "5.0"]
    low, high = result.percent_ci95["BLA"]
    assert rows["blast"][3] == f"{low:.1f}-{high:.1f}"
    assert len(rows) == sum(c.counted for c in SCHEME.classes)
    assert count_text.excluded_rows(result, SCHEME, "en") == [["artefact", "3"]]


def test_summary_and_spanish_names():
    result = differential(["BLA"] * 10 + ["EBO"] * 30 + ["NGS"] * 60, target=300)
    lines = count_text.summary_lines(result, "es")
    assert lines[0] == "Contadas: 100 de 300 células"
    assert lines[2].startswith("Blastos: 10.0%")
    assert "2.33:1" in lines[3]
    assert count_text.counted_rows(result, SCHEME, "es")[0][0] == "blasto"


def test_warnings_name_crossed_thresholds():
    result = differential(["BLA"] * 24 + ["NGS"] * 476)
    warnings = count_text.warning_lines(result, "en")
    crossing = [w for w in warnings if "crosses" in w]
    assert crossing == [
        "The blast % interval crosses 5%: count more cells or ask for a second read."
    ]


def test_hints_and_empty_count():
    result = differential(["BLA"] * 30 + ["NGS"] * 70)
    hints = count_text.hint_lines(result, "en")
    assert hints[0] == "WHO 2022: >= 20% (AML range)"
    assert "not a diagnosis" in hints[-1]
    empty = differential([])
    assert count_text.hint_lines(empty, "en") == []
    assert count_text.warning_lines(empty, "en") == ["No cells counted yet."]
    assert "no cells counted" in count_text.summary_lines(empty, "en")[2]


def test_differential_text_both_languages():
    result = differential(["BLA"] * 24 + ["NGS"] * 476 + ["KSC"] * 2)
    english = count_text.differential_text(result, SCHEME, lang="en")
    spanish = count_text.differential_text(result, SCHEME, lang="es")
    assert "blast" in english
    assert "4.8" in english
    assert "3.2-7.0" in english
    assert "Blasts: 4.8% (95% CI 3.2-7.0%)" in english
    assert "crosses 5%" in english
    assert "smudge cell 2" in english
    assert "Blastos: 4.8% (IC 95% 3.2-7.0%)" in spanish
    assert "neutrófilo segmentado" in spanish
    assert "No es un producto sanitario certificado" in spanish
