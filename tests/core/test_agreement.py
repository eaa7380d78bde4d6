"""Cohen's kappa, per-class kappa, confusion and counts between two readers."""

import numpy as np
import pandas as pd
import pytest

from napari_alma.core.agreement import (
    NO_OVERLAP,
    ONE_CLASS,
    cohen_kappa,
    compare_labels,
    kappa_band,
)
from napari_alma.core.scheme import default_scheme

# Twenty cells classed by two readers; rows reader A, columns reader B:
#
#            B: BLA  LYT  EBO | A total
#   A  BLA       5    1    0  |   6
#   A  LYT       2    6    1  |   9
#   A  EBO       0    1    4  |   5
#   B total      7    8    5  |  20
TABLE = {("BLA", "BLA"): 5, ("BLA", "LYT"): 1, ("LYT", "BLA"): 2, ("LYT", "LYT"): 6,
         ("LYT", "EBO"): 1, ("EBO", "LYT"): 1, ("EBO", "EBO"): 4}


def readers_from_table(table, first_id=1):
    pairs = [pair for pair, n in table.items() for _ in range(n)]
    ids = range(first_id, first_id + len(pairs))
    a = pd.Series([p[0] for p in pairs], index=ids)
    b = pd.Series([p[1] for p in pairs], index=ids)
    return a, b


def test_kappa_matches_hand_computation():
    p_o = (5 + 6 + 4) / 20
    p_e = (6 * 7 + 9 * 8 + 5 * 5) / 20**2
    a, b = readers_from_table(TABLE)
    result = compare_labels(a, b, "ana", "bea", scheme=default_scheme())
    assert result.observed == pytest.approx(p_o)
    assert result.expected == pytest.approx(p_e)
    assert result.kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert result.kappa == pytest.approx(0.61686, abs=1e-5)


def test_per_class_kappa_one_vs_rest():
    # BLA against the rest: [[5, 1], [2, 12]].
    p_o = (5 + 12) / 20
    p_e = (6 * 7 + 14 * 13) / 20**2
    a, b = readers_from_table(TABLE)
    per_class = {item.code: item for item in compare_labels(a, b).per_class}
    assert per_class["BLA"].kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert per_class["BLA"].count_a == 6
    assert per_class["BLA"].count_b == 7
    assert set(per_class) == {"BLA", "LYT", "EBO"}


def test_confusion_rows_are_reader_a():
    a, b = readers_from_table(TABLE)
    confusion = compare_labels(a, b, scheme=default_scheme()).confusion
    assert list(confusion.index) == ["BLA", "LYT", "EBO"]  # scheme order
    assert confusion.loc["LYT", "BLA"] == 2
    assert confusion.loc["BLA", "LYT"] == 1
    assert int(confusion.to_numpy().sum()) == 20


def test_disagreements_list_cells():
    a, b = readers_from_table(TABLE)
    disagreements = compare_labels(a, b).disagreements
    assert len(disagreements) == 5
    first = disagreements.iloc[0]
    assert int(first["cell_id"]) == 6
    assert (first["class_a"], first["class_b"]) == ("BLA", "LYT")


def test_identical_readers_kappa_one():
    a, _ = readers_from_table(TABLE)
    result = compare_labels(a, a.copy())
    assert result.kappa == pytest.approx(1.0)
    assert result.disagreements.empty
    assert all(item.kappa == pytest.approx(1.0) for item in result.per_class)


def test_one_class_only_kappa_undefined():
    a = pd.Series(["LYT"] * 4, index=[1, 2, 3, 4])
    result = compare_labels(a, a.copy())
    assert result.kappa is None
    assert result.kappa_undefined == ONE_CLASS
    assert result.observed == pytest.approx(1.0)
    assert result.per_class[0].undefined == ONE_CLASS


def test_no_overlap_kappa_undefined():
    a = pd.Series(["LYT", "BLA"], index=[1, 2])
    b = pd.Series(["LYT", "BLA"], index=[3, 4])
    result = compare_labels(a, b)
    assert result.kappa is None
    assert result.kappa_undefined == NO_OVERLAP
    assert result.both == 0
    assert result.only_a == [1, 2]
    assert result.only_b == [3, 4]
    assert result.per_class == []


def test_unlabelled_cells_count_as_one_reader_only():
    a = pd.Series(["LYT", "BLA", "", None], index=[1, 2, 3, 4])
    b = pd.Series(["LYT", "", "EBO", None], index=[1, 2, 3, 4])
    result = compare_labels(a, b)
    assert result.both == 1
    assert result.only_a == [2]
    assert result.only_b == [3]


def test_reader_blast_percent_with_interval():
    a, b = readers_from_table(TABLE)
    counts = compare_labels(a, b, "ana", "bea", scheme=default_scheme()).counts
    assert [count.reader for count in counts] == ["ana", "bea"]
    assert counts[0].blast_percent == pytest.approx(100 * 6 / 20)
    assert counts[1].blast_percent == pytest.approx(100 * 7 / 20)
    low, high = counts[1].blast_ci95
    assert low < 35 < high


def test_cohen_kappa_empty_table():
    assert cohen_kappa(np.zeros((2, 2))) == (None, None, None)


def test_to_dict_is_json_ready():
    import json

    a, b = readers_from_table(TABLE)
    payload = compare_labels(a, b, "ana", "bea", scheme=default_scheme()).to_dict()
    decoded = json.loads(json.dumps(payload))
    assert decoded["confusion"]["counts"][1][0] == 2
    assert decoded["readers"] == ["ana", "bea"]


@pytest.mark.parametrize(("kappa", "band"), [
    (-0.1, "poor"), (0.0, "slight"), (0.2, "slight"), (0.4, "fair"), (0.617, "substantial"),
    (0.95, "almost_perfect"), (1.0, "almost_perfect"),
])
def test_kappa_band(kappa, band):
    assert kappa_band(kappa) == band
