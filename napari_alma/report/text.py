"""Plain-text rendering of a differential count, in English or Spanish."""

from __future__ import annotations

from napari_alma.core.counting import Differential, crossed_thresholds
from napari_alma.core.i18n import get_language, tr
from napari_alma.core.scheme import ClassScheme


def warning_texts(differential: Differential, lang: str | None = None) -> list[str]:
    """Return the count's warnings as sentences in the user's language."""
    texts = []
    for warning in differential.warnings:
        thresholds = ", ".join(f"{t:g}" for t in crossed_thresholds(differential))
        texts.append(tr(f"warn_{warning}", lang, thresholds=thresholds))
    return texts


def summary_lines(differential: Differential, lang: str | None = None) -> list[str]:
    """Return the headline figures: total, blast %, M:E, unreviewed, hints."""
    lines = [tr("total_counted", lang, total=differential.total_counted,
                target=differential.target)]
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
    lines.append(tr("unreviewed", lang, n=differential.unreviewed))
    if differential.who_band:
        lines += [tr(differential.who_band, lang), tr(differential.icc_band, lang),
                  tr("hint_disclaimer", lang)]
    return lines


def differential_text(
    differential: Differential, scheme: ClassScheme, lang: str | None = None
) -> str:
    """Render a differential as a table with the headline figures and warnings."""
    rows = [f"{tr('class', lang):<32} {tr('count', lang):>6} {'%':>6}  {tr('ci95', lang)}"]
    for code, count in differential.counts.items():
        low, high = differential.percent_ci95[code]
        name = f"{code} {scheme[code].name(get_language(lang))}"
        rows.append(f"{name:<32} {count:>6} {differential.percent[code]:>6.1f}  "
                    f"{low:.1f}-{high:.1f}")
    excluded = [f"{code} {n}" for code, n in differential.excluded.items() if n]
    if excluded:
        rows += ["", f"{tr('excluded_title', lang)}: {', '.join(excluded)}"]
    rows += [""] + summary_lines(differential, lang) + warning_texts(differential, lang)
    rows.append(tr("research_use", lang))
    return "\n".join(rows)
