"""Agreement between two readers who classified the same cells: Cohen's kappa and more.

Cohen's kappa (Cohen 1960, Educ Psychol Meas 20:37-46) is ``(p_o - p_e) / (1 - p_e)``,
where ``p_o`` is the observed share of cells both readers put in the same class and
``p_e`` the share expected by chance from each reader's class frequencies. Kappa is
undefined when ``p_e`` is 1 (both readers used one and the same class for every cell)
or when no cell was labelled by both. It is then reported as None, never as a number.
Per-class kappa is the kappa of the 2x2 table "this class / any other class".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from napari_alma.core.counting import count_differential
from napari_alma.core.scheme import ClassScheme

# Reasons for an undefined (None) kappa, stored in ``Agreement.kappa_undefined`` and
# ``ClassKappa.undefined``.
NO_OVERLAP = "no_overlap"
ONE_CLASS = "one_class"
# Landis and Koch 1977 (Biometrics 33:159-174) strength-of-agreement bands for a kappa
# of 0 or more: inclusive upper bound, name. Below 0 the agreement is "poor". A
# descriptive convention, not a test.
KAPPA_BANDS = ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"),
               (1.0, "almost_perfect"))


@dataclass
class ReaderCount:
    """One reader's own count of the cells they labelled."""

    reader: str
    labelled: int
    total_counted: int
    blast_count: int
    blast_percent: float | None
    blast_ci95: tuple[float, float] | None


@dataclass
class ClassKappa:
    """Kappa of one class against all the others, with each reader's use of the class."""

    code: str
    kappa: float | None
    count_a: int
    count_b: int
    undefined: str | None = None


@dataclass
class Agreement:
    """Agreement between reader A and reader B on one slide's cells.

    ``confusion`` rows are reader A's classes and columns reader B's, over the cells both
    labelled. ``disagreements`` has one row per such cell whose classes differ, with the
    columns ``cell_id, class_a, class_b``.
    """

    reader_a: str
    reader_b: str
    both: int
    only_a: list[int]
    only_b: list[int]
    observed: float | None
    expected: float | None
    kappa: float | None
    kappa_undefined: str | None
    per_class: list[ClassKappa]
    confusion: pd.DataFrame
    disagreements: pd.DataFrame
    counts: list[ReaderCount] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the JSON shape of ``napari-alma agreement --json``."""
        return {
            "readers": [self.reader_a, self.reader_b],
            "cells_both": self.both,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "observed_agreement": self.observed,
            "expected_agreement": self.expected,
            "kappa": self.kappa,
            "kappa_undefined": self.kappa_undefined,
            "per_class": [vars(item) for item in self.per_class],
            "confusion": {
                "rows": list(self.confusion.index),
                "columns": list(self.confusion.columns),
                "counts": self.confusion.to_numpy(int).tolist(),
            },
            "disagreements": self.disagreements.to_dict(orient="records"),
            "counts": [
                {**vars(count),
                 "blast_ci95": list(count.blast_ci95) if count.blast_ci95 else None}
                for count in self.counts
            ],
        }


def cohen_kappa(confusion: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Return ``(kappa, p_o, p_e)`` of a square confusion matrix of two readers.

    Parameters
    ----------
    confusion : (K, K) int ndarray
        Cells put in class i by reader A (rows) and class j by reader B (columns).

    Returns
    -------
    tuple
        Kappa, observed agreement and chance agreement. All three are None for an empty
        table; kappa alone is None when chance agreement is 1.
    """
    table = np.asarray(confusion, dtype=float)
    total = table.sum()
    if total == 0:
        return None, None, None
    observed = float(np.trace(table) / total)
    expected = float(np.dot(table.sum(axis=1), table.sum(axis=0)) / total**2)
    if np.isclose(expected, 1.0):
        return None, observed, expected
    return (observed - expected) / (1.0 - expected), observed, expected


def kappa_band(kappa: float) -> str:
    """Return the Landis and Koch band of a kappa ("poor" below 0 ... "almost_perfect")."""
    if kappa < 0:
        return "poor"
    for upper, name in KAPPA_BANDS:
        if kappa <= upper:
            return name
    return KAPPA_BANDS[-1][1]


def compare_labels(
    labels_a: pd.Series,
    labels_b: pd.Series,
    reader_a: str = "A",
    reader_b: str = "B",
    scheme: ClassScheme | None = None,
) -> Agreement:
    """Compare two readers' classes of the same cells.

    Parameters
    ----------
    labels_a, labels_b : pd.Series of str
        Each reader's class per cell, indexed by cell id; an empty string or a missing
        value means the reader has not labelled that cell.
    reader_a, reader_b : str
        The readers' names, carried into the result.
    scheme : ClassScheme, optional
        Orders the classes as the scheme does, and gives each reader's blast percentage
        (ICSH counted classes). Without it, classes are sorted and no counts are made.
    """
    a = _labelled(labels_a)
    b = _labelled(labels_b)
    common = a.index.intersection(b.index).sort_values()
    pair_a, pair_b = a.loc[common], b.loc[common]
    classes = _class_order(set(pair_a) | set(pair_b), scheme)
    confusion = pd.crosstab(
        pd.Categorical(pair_a, categories=classes),
        pd.Categorical(pair_b, categories=classes),
        dropna=False,
    ).reindex(index=classes, columns=classes, fill_value=0)
    confusion.index.name = reader_a
    confusion.columns.name = reader_b
    kappa, observed, expected = cohen_kappa(confusion.to_numpy())
    return Agreement(
        reader_a=reader_a,
        reader_b=reader_b,
        both=len(common),
        only_a=sorted(int(i) for i in a.index.difference(b.index)),
        only_b=sorted(int(i) for i in b.index.difference(a.index)),
        observed=observed,
        expected=expected,
        kappa=kappa,
        kappa_undefined=_why_undefined(kappa, len(common)),
        per_class=[_class_kappa(code, confusion) for code in classes],
        confusion=confusion,
        disagreements=_disagreements(pair_a, pair_b),
        counts=_reader_counts(((reader_a, a), (reader_b, b)), scheme),
    )


def _labelled(labels: pd.Series) -> pd.Series:
    labels = labels.fillna("").astype(str)
    return labels[labels != ""]


def _class_order(codes: set[str], scheme: ClassScheme | None) -> list[str]:
    if scheme is None:
        return sorted(codes)
    known = [code for code in scheme.codes if code in codes]
    return known + sorted(codes - set(known))


def _why_undefined(kappa: float | None, both: int) -> str | None:
    if kappa is not None:
        return None
    return NO_OVERLAP if both == 0 else ONE_CLASS


def _class_kappa(code: str, confusion: pd.DataFrame) -> ClassKappa:
    """Return the one-vs-rest kappa of ``code`` from the full confusion matrix."""
    total = int(confusion.to_numpy().sum())
    both_yes = int(confusion.loc[code, code])
    a_yes = int(confusion.loc[code].sum())
    b_yes = int(confusion[code].sum())
    binary = np.array([
        [both_yes, a_yes - both_yes],
        [b_yes - both_yes, total - a_yes - b_yes + both_yes],
    ])
    kappa, _, _ = cohen_kappa(binary)
    return ClassKappa(code=code, kappa=kappa, count_a=a_yes, count_b=b_yes,
                      undefined=_why_undefined(kappa, total))


def _disagreements(pair_a: pd.Series, pair_b: pd.Series) -> pd.DataFrame:
    differ = pair_a != pair_b
    return pd.DataFrame({
        "cell_id": pair_a.index[differ].astype(int),
        "class_a": pair_a[differ].to_numpy(str),
        "class_b": pair_b[differ].to_numpy(str),
    })


def _reader_counts(readers, scheme: ClassScheme | None) -> list[ReaderCount]:
    if scheme is None:
        return []
    counts = []
    for name, labels in readers:
        differential = count_differential(labels.tolist(), scheme)
        counts.append(ReaderCount(
            reader=name,
            labelled=len(labels),
            total_counted=differential.total_counted,
            blast_count=differential.blast_count,
            blast_percent=differential.blast_percent,
            blast_ci95=differential.blast_ci95,
        ))
    return counts
