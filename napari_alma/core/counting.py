"""The nucleated differential count (NDC): counts, percentages, blast %, M:E ratio.

Rules follow the ICSH guideline for bone-marrow specimens (Lee et al. 2008, Int J Lab
Hematol 30:349-364): only classes marked ``counted`` in the scheme enter the denominator,
the others are listed apart. Blast bands follow WHO 5th edition (Khoury et al. 2022) and
ICC 2022 (Arber et al. 2022); they are hints, never a diagnosis. Both systems set lower
blast cut-offs for blood than for marrow (MDS-IB1 from 2% blood blasts, ICC MDS with
excess blasts from 2%), so the bands follow the scheme's specimen.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat

from napari_alma.core.scheme import ClassScheme

BLAST_EQUIVALENTS = {"promonocytes": "monocytic", "abnormal-promyelocytes": "apl"}
ME_CONVENTIONS = ("icsh", "no-monocytes")
BLAST_THRESHOLDS = (5.0, 10.0, 20.0)
DEFAULT_TARGET = 500
# A band is (upper bound in percent, exclusive; the i18n key of its hint).
WHO_BANDS = ((5.0, "who_lt5"), (10.0, "who_5_9"), (20.0, "who_10_19"), (math.inf, "who_ge20"))
ICC_BANDS = ((5.0, "icc_lt5"), (10.0, "icc_5_9"), (20.0, "icc_10_19"), (math.inf, "icc_ge20"))
WHO_BLOOD_BANDS = ((2.0, "report_who_pb_lt2"), (5.0, "report_who_pb_2_4"),
                   (20.0, "report_who_pb_5_19"), (math.inf, "report_who_pb_ge20"))
ICC_BLOOD_BANDS = ((2.0, "report_icc_pb_lt2"), (10.0, "report_icc_pb_2_9"),
                   (20.0, "report_icc_pb_10_19"), (math.inf, "report_icc_pb_ge20"))
BLOOD_THRESHOLDS = (2.0, 5.0, 10.0, 20.0)
# specimen -> (WHO bands, ICC bands, blast thresholds whose crossing is warned about)
SPECIMEN_RULES = {
    "bone_marrow": (WHO_BANDS, ICC_BANDS, BLAST_THRESHOLDS),
    "peripheral_blood": (WHO_BLOOD_BANDS, ICC_BLOOD_BANDS, BLOOD_THRESHOLDS),
}
# ICSH: the cells of a decisive percentage are counted over at least two smears.
MIN_SMEARS = 2


def wilson_interval(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion, in percent.

    Parameters
    ----------
    successes, total : int
        Cells of the class, and cells counted.
    z : float
        Normal quantile; the default gives a 95% interval.

    Returns
    -------
    (low, high) : tuple of float
        Bounds in percent (0-100); (0, 100) when ``total`` is 0.
    """
    if total <= 0:
        return (0.0, 100.0)
    proportion = successes / total
    denominator = 1 + z * z / total
    centre = (proportion + z * z / (2 * total)) / denominator
    half_width = z * math.sqrt(proportion * (1 - proportion) / total + z * z / (4 * total**2))
    half_width /= denominator
    return (max(0.0, centre - half_width) * 100, min(1.0, centre + half_width) * 100)


@dataclass
class Differential:
    """The result of a differential count; ``to_dict`` gives the ``count --json`` shape."""

    total_counted: int
    target: int
    counts: dict[str, int]
    percent: dict[str, float]
    percent_ci95: dict[str, tuple[float, float]]
    excluded: dict[str, int]
    blast_count: int
    blast_percent: float | None
    blast_ci95: tuple[float, float] | None
    me_ratio: float | None
    myeloid: int
    erythroid: int
    unreviewed: int
    conventions: dict[str, object]
    who_band: str | None
    icc_band: str | None
    warnings: list[str] = field(default_factory=list)
    slide_id: str | None = None
    per_100: dict[str, float] = field(default_factory=dict)
    # Cells two readers classed differently that no adjudicator has settled yet.
    unadjudicated: int = 0

    def to_dict(self) -> dict:
        """Return the fixed JSON shape of ``napari-alma count --json``."""
        return {
            "slide_id": self.slide_id,
            "total_counted": self.total_counted,
            "target": self.target,
            "counts": self.counts,
            "percent": self.percent,
            "excluded": self.excluded,
            "blast_count": self.blast_count,
            "blast_percent": self.blast_percent,
            "blast_ci95": list(self.blast_ci95) if self.blast_ci95 else None,
            "percent_ci95": {code: list(ci) for code, ci in self.percent_ci95.items()},
            "me_ratio": self.me_ratio,
            "myeloid": self.myeloid,
            "erythroid": self.erythroid,
            "unreviewed": self.unreviewed,
            "unadjudicated": self.unadjudicated,
            "conventions": self.conventions,
            "who_hint": self.who_band,
            "icc_hint": self.icc_band,
            "warnings": self.warnings,
            "per_100_counted": self.per_100,
        }


def count_differential(
    labels: Iterable[str],
    scheme: ClassScheme,
    *,
    target: int | None = None,
    blast_equivalents: Iterable[str] = (),
    me_convention: str = "icsh",
    unreviewed: int = 0,
) -> Differential:
    """Count a slide's (or a case's) cells by class.

    Parameters
    ----------
    labels : iterable of str, or collections.Counter
        The class code each cell counts as (adjudicated, reader or model label), or a
        Counter of cells per class code, which spares a pass over every cell.
    scheme : ClassScheme
        Defines which classes are counted, their lineage and blast role.
    target : int, optional
        Cells the count should reach (ICSH: 500 when a percentage is decisive, else 300);
        by default the scheme's target.
    blast_equivalents : iterable of str
        Per-case settings among "promonocytes" and "abnormal-promyelocytes".
    me_convention : {"icsh", "no-monocytes"}
        M:E ratio with monocytes on the myeloid side (ICSH) or without.
    unreviewed : int
        Cells whose label is still the model's prediction.
    """
    roles = _blast_roles(blast_equivalents)
    if me_convention not in ME_CONVENTIONS:
        raise ValueError(
            f"Unknown M:E convention {me_convention!r}; expected one of {ME_CONVENTIONS}."
        )
    tally = labels if isinstance(labels, Counter) else Counter(labels)
    _check_codes(tally, scheme)
    counts = {c.code: tally.get(c.code, 0) for c in scheme.classes if c.counted}
    excluded = {c.code: tally.get(c.code, 0) for c in scheme.classes if not c.counted}
    total = sum(counts.values())

    blasts = sum(n for code, n in counts.items() if scheme[code].blast in roles)
    myeloid, erythroid = _me_sides(counts, scheme, me_convention)
    differential = Differential(
        total_counted=total,
        target=scheme.default_target if target is None else int(target),
        counts=counts,
        percent={code: _percent(n, total) for code, n in counts.items()},
        percent_ci95={code: wilson_interval(n, total) for code, n in counts.items()},
        excluded=excluded,
        blast_count=blasts,
        blast_percent=_percent(blasts, total) if total else None,
        blast_ci95=wilson_interval(blasts, total) if total else None,
        me_ratio=myeloid / erythroid if erythroid else None,
        myeloid=myeloid,
        erythroid=erythroid,
        unreviewed=unreviewed,
        conventions={
            "blast_equivalents": sorted(set(blast_equivalents)),
            "me_convention": me_convention,
            "blast_lineage_for_me": "myeloid",
            "ci_method": "wilson-95",
            "specimen": scheme.specimen,
        },
        who_band=None,
        icc_band=None,
        per_100={c.code: _percent(tally.get(c.code, 0), total)
                 for c in scheme.classes if c.per_100 and total},
    )
    _add_hints_and_warnings(differential)
    return differential


def _blast_roles(blast_equivalents: Iterable[str]) -> set[str]:
    roles = {"yes"}
    for setting in blast_equivalents:
        if setting not in BLAST_EQUIVALENTS:
            raise ValueError(
                f"Unknown blast-equivalent setting {setting!r}; "
                f"expected any of {', '.join(BLAST_EQUIVALENTS)}."
            )
        roles.add(BLAST_EQUIVALENTS[setting])
    return roles


def _check_codes(tally: Counter, scheme: ClassScheme) -> None:
    unknown = sorted(code for code in tally if code not in scheme)
    if unknown:
        raise ValueError(
            f"Labels {', '.join(map(str, unknown))} are not classes of scheme {scheme.name!r}."
        )


def _me_sides(counts: dict[str, int], scheme: ClassScheme, convention: str) -> tuple[int, int]:
    myeloid = erythroid = 0
    for code, n in counts.items():
        cell_class = scheme[code]
        if cell_class.lineage == "erythroid":
            erythroid += n
        elif cell_class.lineage == "myeloid":
            if not (convention == "no-monocytes" and cell_class.me_optional):
                myeloid += n
    return myeloid, erythroid


def _percent(n: int, total: int) -> float:
    return 100.0 * n / total if total else 0.0


def _band(value: float, bands: tuple[tuple[float, str], ...]) -> str:
    return next(name for upper, name in bands if value < upper)


def _add_hints_and_warnings(differential: Differential) -> None:
    if differential.total_counted == 0:
        differential.warnings.append("no_cells")
        return
    if differential.total_counted < differential.target:
        differential.warnings.append("below_target")
    if differential.unreviewed:
        differential.warnings.append("unreviewed")
    who_bands, icc_bands, _ = _specimen_rules(differential)
    differential.who_band = _band(differential.blast_percent, who_bands)
    differential.icc_band = _band(differential.blast_percent, icc_bands)
    if crossed_thresholds(differential):
        differential.warnings.append("blast_ci_crosses_threshold")


def _specimen_rules(differential: Differential) -> tuple:
    return SPECIMEN_RULES[str(differential.conventions.get("specimen", "bone_marrow"))]


def crossed_thresholds(differential: Differential) -> list[float]:
    """Return the blast thresholds that the blast 95% interval straddles.

    They are 5, 10 and 20% for marrow, and 2, 5, 10 and 20% for blood.
    """
    if differential.blast_ci95 is None:
        return []
    low, high = differential.blast_ci95
    thresholds = _specimen_rules(differential)[2]
    return [threshold for threshold in thresholds if low < threshold <= high]


@dataclass
class CaseCount:
    """The differential of a case (the smears of one sample) and of each of its slides."""

    case_id: str
    differential: Differential
    slides: list[Differential]

    def to_dict(self) -> dict:
        """Return the ``count --json`` shape with ``case_id`` and one entry per slide."""
        return {**self.differential.to_dict(), "case_id": self.case_id,
                "slides": [slide.to_dict() for slide in self.slides]}


def count_case(
    case_id: str, slides: Sequence[Differential], scheme: ClassScheme, **settings
) -> CaseCount:
    """Sum the slide differentials of one case into the case's differential.

    Parameters
    ----------
    case_id : str
        The case (patient sample) the slides belong to.
    slides : sequence of Differential
        One differential per slide (smear), counted with the same ``scheme``.
    scheme : ClassScheme
        Defines which classes are counted.
    **settings
        ``target``, ``blast_equivalents`` and ``me_convention``, as for
        :func:`count_differential`; percentages and intervals are computed again on the
        summed cells, never averaged over slides.
    """
    tally: Counter = Counter()
    for slide in slides:
        tally.update(slide.counts)
        tally.update(slide.excluded)
    labels = chain.from_iterable(repeat(code, n) for code, n in tally.items())
    unreviewed = sum(slide.unreviewed for slide in slides)
    combined = count_differential(labels, scheme, unreviewed=unreviewed, **settings)
    combined.unadjudicated = sum(slide.unadjudicated for slide in slides)
    if combined.unadjudicated:
        combined.warnings.append("unadjudicated")
    if len(slides) < MIN_SMEARS:
        combined.warnings.append("single_smear")
    return CaseCount(case_id=case_id, differential=combined, slides=list(slides))
