"""The differential count as text, in English or Spanish: for the count dock and the CLI."""

from __future__ import annotations

from napari_alma.core.counting import CaseCount, Differential, crossed_thresholds
from napari_alma.core.i18n import get_language, tr
from napari_alma.core.scheme import ClassScheme

# Warnings whose text lives in the report catalogue; the others are ``warn_<code>``.
WARNING_KEYS = {"single_smear": "report_warn_single_smear"}


def counted_rows(differential: Differential, scheme: ClassScheme, lang: str) -> list[list[str]]:
    """Return one row per counted class: name, count, percent and 95% interval."""
    rows = []
    for code, count in differential.counts.items():
        low, high = differential.percent_ci95[code]
        rows.append([
            scheme[code].name(lang),
            str(count),
            f"{differential.percent[code]:.1f}",
            f"{low:.1f}-{high:.1f}",
        ])
    return rows


def excluded_rows(differential: Differential, scheme: ClassScheme, lang: str) -> list[list[str]]:
    """Return one row (name, count) per class outside the NDC that has cells."""
    return [
        [scheme[code].name(lang), str(count)]
        for code, count in differential.excluded.items()
        if count
    ]


def summary_lines(differential: Differential, lang: str) -> list[str]:
    """Return the count's summary: cells counted, unreviewed, blast %, M:E ratio."""
    return [
        tr("total_counted", lang, total=differential.total_counted, target=differential.target),
        tr("unreviewed", lang, n=differential.unreviewed),
        blast_line(differential, lang),
        me_line(differential, lang),
    ]


def blast_line(differential: Differential, lang: str) -> str:
    """Return the blast percentage with its 95% interval, or that no cells were counted."""
    if differential.blast_percent is None:
        return tr("blast_percent_none", lang)
    low, high = differential.blast_ci95
    return tr("blast_percent", lang, percent=differential.blast_percent, low=low, high=high)


def me_line(differential: Differential, lang: str) -> str:
    """Return the M:E ratio, or why there is none (no erythroblasts, or a blood smear)."""
    if differential.conventions.get("specimen") == "peripheral_blood":
        return tr("report_me_not_applicable", lang)
    if differential.me_ratio is None:
        return tr("me_ratio_none", lang)
    return tr("me_ratio", lang, ratio=differential.me_ratio)


def warning_lines(differential: Differential, lang: str) -> list[str]:
    """Return the count's warnings in ``lang`` (threshold crossing, below target, ...)."""
    lines = []
    for warning in differential.warnings:
        values = {}
        if warning == "blast_ci_crosses_threshold":
            thresholds = crossed_thresholds(differential)
            values["thresholds"] = ", ".join(f"{threshold:g}" for threshold in thresholds)
        elif warning == "unadjudicated":
            values["n"] = differential.unadjudicated
        lines.append(tr(WARNING_KEYS.get(warning, f"warn_{warning}"), lang, **values))
    return lines


def per_100_lines(differential: Differential, scheme: ClassScheme, lang: str) -> list[str]:
    """Return the classes reported per 100 counted cells (NRBC per 100 WBC in blood)."""
    return [tr("report_per_100", lang, name=scheme[code].name(lang), value=value)
            for code, value in differential.per_100.items()]


def hint_lines(differential: Differential, lang: str) -> list[str]:
    """Return the WHO and ICC blast bands with the not-a-diagnosis line, or nothing."""
    hints = [tr(band, lang) for band in (differential.who_band, differential.icc_band) if band]
    return [*hints, tr("hint_disclaimer", lang)] if hints else []


def differential_text(
    differential: Differential, scheme: ClassScheme, lang: str | None = None
) -> str:
    """Render a differential as a plain-text table with the summary, warnings and hints."""
    lang = get_language(lang)
    rows = [f"{tr('class', lang):<32} {tr('count', lang):>6} {'%':>6}  {tr('ci95', lang)}"]
    for name, count, percent, interval in counted_rows(differential, scheme, lang):
        rows.append(f"{name:<32} {count:>6} {percent:>6}  {interval}")
    excluded = excluded_rows(differential, scheme, lang)
    if excluded:
        listed = ", ".join(f"{name} {count}" for name, count in excluded)
        rows += ["", f"{tr('excluded_title', lang)}: {listed}"]
    rows += ["", *summary_lines(differential, lang), *per_100_lines(differential, scheme, lang),
             *warning_lines(differential, lang),
             *hint_lines(differential, lang), tr("research_use", lang)]
    return "\n".join(rows)


def case_text(case: CaseCount, scheme: ClassScheme, lang: str | None = None) -> str:
    """Render a case: one line per slide, then the summed differential as a table."""
    lang = get_language(lang)
    lines = [tr("report_case_heading", lang, case=case.case_id, n=len(case.slides))]
    for slide in case.slides:
        blasts = "-" if slide.blast_percent is None else f"{slide.blast_percent:.1f}%"
        lines.append(tr("report_case_slide_line", lang, slide=slide.slide_id,
                        total=slide.total_counted, blasts=blasts))
    return "\n".join([*lines, "", differential_text(case.differential, scheme, lang)])
