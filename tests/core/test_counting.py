import math

import pytest

from napari_alma.core.counting import (
    count_case,
    count_differential,
    crossed_thresholds,
    wilson_interval,
)
from napari_alma.core.scheme import default_scheme, load_scheme

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


BLOOD = load_scheme("peripheral_blood")


def wilson_by_hand(k, n, z=1.959964):
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return 100 * (centre - half), 100 * (centre + half)


def test_target_follows_scheme():
    assert count_differential(["NGS"], SCHEME).target == 500
    assert count_differential(["NGS"], BLOOD).target == 200
    assert count_differential(["NGS"], BLOOD, target=100).target == 100


def test_blood_nrbc_per_100_counted():
    labels = ["NGS"] * 150 + ["LYT"] * 50 + ["EBO"] * 9 + ["KSC"] * 4
    differential = count_differential(labels, BLOOD)
    assert differential.total_counted == 200
    assert differential.per_100 == {"EBO": pytest.approx(4.5)}
    assert differential.excluded["EBO"] == 9
    assert differential.excluded["KSC"] == 4
    assert differential.me_ratio is None


def test_blood_bands_use_blood_cutoffs():
    differential = count_differential(["BLA"] * 6 + ["NGS"] * 194, BLOOD)
    assert differential.blast_percent == pytest.approx(3.0)
    assert differential.who_band == "report_who_pb_2_4"
    assert differential.icc_band == "report_icc_pb_2_9"
    low, high = wilson_by_hand(6, 200)
    assert differential.blast_ci95[0] == pytest.approx(low)
    assert differential.blast_ci95[1] == pytest.approx(high)
    assert crossed_thresholds(differential) == [2.0, 5.0]


def test_marrow_bands_ignore_blood_cutoffs():
    differential = count_differential(["BLA"] * 6 + ["NGS"] * 194, SCHEME)
    assert differential.who_band == "who_lt5"
    assert crossed_thresholds(differential) == [5.0]


def test_case_sums_slides_not_percentages():
    first = count_differential(["BLA"] * 20 + ["NGS"] * 280 + ["ART"] * 2, SCHEME)
    second = count_differential(["BLA"] * 4 + ["NGS"] * 196, SCHEME, unreviewed=7)
    case = count_case("C1", [first, second], SCHEME)
    combined = case.differential
    assert combined.total_counted == 500
    assert combined.blast_count == 24
    assert combined.blast_percent == pytest.approx(4.8)
    low, high = wilson_by_hand(24, 500)
    assert combined.blast_ci95[0] == pytest.approx(low)
    assert combined.blast_ci95[1] == pytest.approx(high)
    assert combined.excluded["ART"] == 2
    assert combined.unreviewed == 7
    assert "single_smear" not in combined.warnings


def test_case_of_one_smear_warned():
    only = count_differential(["NGS"] * 500, SCHEME)
    case = count_case("C2", [only], SCHEME)
    assert "single_smear" in case.differential.warnings


def test_case_dict_lists_slides():
    first = count_differential(["NGS"] * 3, SCHEME)
    first.slide_id = "S-1"
    second = count_differential(["BLA"], SCHEME)
    second.slide_id = "S-2"
    result = count_case("C3", [first, second], SCHEME, target=300).to_dict()
    assert result["case_id"] == "C3"
    assert [slide["slide_id"] for slide in result["slides"]] == ["S-1", "S-2"]
    assert result["counts"]["NGS"] == 3
    assert result["target"] == 300
    assert result["slide_id"] is None
