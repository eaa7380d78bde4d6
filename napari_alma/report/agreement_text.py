"""Reader agreement as text, in English or Spanish: for the agreement dock and the CLI."""

from __future__ import annotations

import pandas as pd

from napari_alma.core.agreement import NO_OVERLAP, Agreement, kappa_band
from napari_alma.core.i18n import get_language, tr
from napari_alma.core.scheme import ClassScheme


def kappa_line(agreement: Agreement, lang: str) -> str:
    """Return the overall kappa with its Landis and Koch band, or why it is undefined."""
    if agreement.kappa is None:
        key = "second_kappa_no_overlap" if agreement.kappa_undefined == NO_OVERLAP else (
            "second_kappa_one_class")
        return tr(key, lang)
    band = tr(f"second_kappa_{kappa_band(agreement.kappa)}", lang)
    return tr("second_kappa", lang, kappa=agreement.kappa, band=band, n=agreement.both)


def summary_lines(agreement: Agreement, lang: str, unadjudicated: int | None = None) -> list[str]:
    """Return kappa, observed agreement, one-reader cells, blast % per reader, disagreements.

    ``unadjudicated``, when given, is how many disagreements no adjudicator settled yet.
    """
    lines = [kappa_line(agreement, lang)]
    if agreement.observed is not None:
        lines.append(tr("second_observed", lang, observed=100 * agreement.observed,
                        expected=100 * agreement.expected))
    lines.append(tr("second_only_one", lang, only_a=len(agreement.only_a),
                    only_b=len(agreement.only_b), reader_a=agreement.reader_a,
                    reader_b=agreement.reader_b))
    for count in agreement.counts:
        if count.blast_percent is None:
            lines.append(tr("second_blast_none", lang, reader=count.reader))
        else:
            low, high = count.blast_ci95
            lines.append(tr("second_blast", lang, reader=count.reader,
                            percent=count.blast_percent, low=low, high=high,
                            total=count.total_counted))
    if unadjudicated is not None:
        lines.append(tr("second_disagreements_open", lang, n=len(agreement.disagreements),
                        open=unadjudicated))
    return lines


def per_class_rows(agreement: Agreement, scheme: ClassScheme, lang: str) -> list[list[str]]:
    """Return one row per class either reader used: name, kappa, count by A, count by B.

    The kappa text carries its Landis and Koch band, e.g. "0.62 (substantial)".
    """
    rows = []
    for item in agreement.per_class:
        name = scheme[item.code].name(lang) if item.code in scheme else item.code
        if item.kappa is None:
            kappa = tr("second_undefined", lang)
        else:
            band = tr(f"second_kappa_{kappa_band(item.kappa)}", lang)
            kappa = f"{item.kappa:.2f} ({band})"
        rows.append([name, kappa, str(item.count_a), str(item.count_b)])
    return rows


def per_class_headers(agreement: Agreement, lang: str) -> list[str]:
    """Return the column titles of :func:`per_class_rows`."""
    return [tr("class", lang), tr("second_col_kappa", lang), agreement.reader_a,
            agreement.reader_b]


def agreement_text(
    agreement: Agreement,
    scheme: ClassScheme,
    disagreements: pd.DataFrame,
    lang: str | None = None,
) -> str:
    """Render the agreement as plain text: summary, per-class kappa, confusion, disagreements.

    ``disagreements`` is the table of
    :func:`napari_alma.store.second_read.disagreement_table`.
    """
    lang = get_language(lang)
    unadjudicated = int((disagreements["adjudicated"] == "").sum())
    lines = [*summary_lines(agreement, lang, unadjudicated), tr("second_band_source", lang), ""]
    lines.append(tr("second_per_class_title", lang))
    headers = per_class_headers(agreement, lang)
    lines.append(f"  {headers[0]:<32} {headers[1]:<24} {headers[2]:>10} {headers[3]:>10}")
    for name, kappa, count_a, count_b in per_class_rows(agreement, scheme, lang):
        lines.append(f"  {name:<32} {kappa:<24} {count_a:>10} {count_b:>10}")
    lines += ["", tr("second_confusion_title", lang, reader_a=agreement.reader_a,
                     reader_b=agreement.reader_b)]
    if not agreement.confusion.empty:
        lines += ["  " + line for line in agreement.confusion.to_string().splitlines()]
    lines += ["", tr("second_disagreements_open", lang, n=len(disagreements),
                     open=unadjudicated)]
    for row in disagreements.itertuples():
        agreed = f"; {tr('second_col_agreed', lang)}: {row.adjudicated}" if row.adjudicated else ""
        lines.append(f"  {tr('second_col_cell', lang)} {row.cell_id} ({row.row:.0f}, "
                     f"{row.col:.0f}): {agreement.reader_a} {row.class_a}, "
                     f"{agreement.reader_b} {row.class_b}{agreed}")
    lines.append(tr("research_use", lang))
    return "\n".join(lines)

