import math

import pytest

from napari_alma.core.counting import count_differential, crossed_thresholds, wilson_interval
from napari_alma.core.scheme import default_scheme

SCHEME = default_scheme()


def test_wilson_interval_24_of_500():
    # Wilson score interval computed by hand: p = 0.048, z = 1.959964, n = 500.
    z, n, p = 1.959964, 500, 24 / 500
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low, high = wilson_interval(24, 500)
    assert low == pytest.approx((centre - half) * 100)
    assert high == pytest.approx((centre + half) * 100)
    assert low == pytest.approx(3.247, abs=1e-3)
    assert high == pytest.approx(7.043, abs=1e-3)


def test_blast_percent_straddles_five():
    differential = count_differential(["BLA"] * 24 + ["NGS"] * 476, SCHEME)
    assert differential.total_counted == 500
    assert differential.blast_percent == pytest.approx(4.8)
    assert crossed_thresholds(differential) == [5.0]
    assert "blast_ci_crosses_threshold" in differential.warnings
    assert differential.who_band == "who_lt5"


def test_excluded_classes_outside_denominator():
    labels = ["NGS"] * 90 + ["EBO"] * 10 + ["MGK"] * 3 + ["KSC"] * 7
    differential = count_differential(labels, SCHEME, target=300)
    assert differential.total_counted == 100
    assert differential.percent["NGS"] == pytest.approx(90.0)
    assert differential.excluded == {"MGK": 3, "MAC": 0, "OTH": 0, "KSC": 7, "ART": 0, "NIF": 0}
    assert "below_target" in differential.warnings


def test_me_ratio_with_and_without_monocytes():
    labels = ["NGS"] * 40 + ["MON"] * 20 + ["LYT"] * 30 + ["PLM"] * 5 + ["EBO"] * 15 + ["PEB"] * 5
    icsh = count_differential(labels, SCHEME)
    no_monocytes = count_differential(labels, SCHEME, me_convention="no-monocytes")
    assert icsh.me_ratio == pytest.approx(60 / 20)
    assert no_monocytes.me_ratio == pytest.approx(40 / 20)
    assert icsh.conventions["me_convention"] == "icsh"


def test_blast_equivalents_are_opt_in():
    labels = ["BLA"] * 10 + ["PMC"] * 10 + ["PMO"] * 5 + ["NGS"] * 75
    assert count_differential(labels, SCHEME).blast_count == 10
    monocytic = count_differential(labels, SCHEME, blast_equivalents=["promonocytes"])
    assert monocytic.blast_count == 20
    both = count_differential(
        labels, SCHEME, blast_equivalents=["promonocytes", "abnormal-promyelocytes"]
    )
    assert both.blast_percent == pytest.approx(25.0)
    assert both.icc_band == "icc_ge20"


def test_every_cell_excluded_or_none():
    only_excluded = count_differential(["ART", "KSC"], SCHEME)
    empty = count_differential([], SCHEME)
    for differential in (only_excluded, empty):
        assert differential.total_counted == 0
        assert differential.blast_percent is None
        assert differential.me_ratio is None
        assert differential.warnings == ["no_cells"]
    assert only_excluded.excluded["ART"] == 1


def test_unknown_label_rejected():
    with pytest.raises(ValueError, match="XYZ"):
        count_differential(["XYZ"], SCHEME)


def test_to_dict_has_fixed_keys():
    result = count_differential(["BLA", "NGS"], SCHEME).to_dict()
    expected = {"slide_id", "total_counted", "target", "counts", "percent", "excluded",
                "blast_percent", "blast_ci95", "percent_ci95", "me_ratio", "unreviewed",
                "conventions", "who_hint", "icc_hint", "warnings"}
    assert expected <= set(result)
    assert result["percent"]["BLA"] == pytest.approx(50.0)
