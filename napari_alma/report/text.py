"""The differential count as text, in English or Spanish: for the count dock and the CLI."""

from __future__ import annotations

from napari_alma.core.counting import Differential, crossed_thresholds
from napari_alma.core.i18n import get_language, tr
from napari_alma.core.scheme import ClassScheme


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
    lines = [
        tr("total_counted", lang, total=differential.total_counted, target=differential.target),
        tr("unreviewed", lang, n=differential.unreviewed),
    ]
    if differential.blast_percent is None:
        lines.append(tr("blast_percent_none", lang))
    else:
        low, high = differential.blast_ci95
        lines.append(tr("blast_percent", lang, percent=differential.blast_percent,
                        low=low, high=high))
    if differential.me_ratio is None:
        lines.append(tr("me_ratio_none", lang))
    else:
        lines.append(tr("me_ratio", lang, ratio=differential.me_ratio))
    return lines


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
        lines.append(tr(f"warn_{warning}", lang, **values))
    return lines


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
    rows += ["", *summary_lines(differential, lang), *warning_lines(differential, lang),
             *hint_lines(differential, lang), tr("research_use", lang)]
    return "\n".join(rows)
