"""The report's texts in one language, shared by the HTML and the PDF renderings."""

from __future__ import annotations

from datetime import datetime

from napari_alma.core.counting import Differential
from napari_alma.core.i18n import tr
from napari_alma.report.content import ReportContent
from napari_alma.report.signoff import SignOff


def format_time(value: str) -> str:
    """Return an ISO 8601 UTC time as "YYYY-MM-DD HH:MM:SS", or unchanged if it is not one."""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def signoff_text(signoff: SignOff | None, lang: str) -> str:
    """Return who signed off and when, or "not signed off"."""
    if signoff is None:
        return tr("report_not_signed", lang)
    return tr("report_signed", lang, reader=signoff.reader or "?",
              time=format_time(signoff.time))


def report_signoff_text(content: ReportContent, lang: str) -> str:
    """Return the sign-off state of a report: its slide's, or how many of a case's slides."""
    if content.case_id is None:
        return signoff_text(content.slides[0].signoff, lang)
    total = len(content.slides)
    if content.signed_slides == total:
        return tr("report_case_signed", lang, total=total)
    return tr("report_case_not_signed", lang, signed=content.signed_slides, total=total)


def subject_rows(content: ReportContent, lang: str) -> list[tuple[str, str, str]]:
    """Return (html id, name, value) rows naming the slide, or the case and its slides."""
    if content.case_id is None:
        return [("subject", tr("report_slide", lang), content.slides[0].slide_id)]
    slide_ids = ", ".join(entry.slide_id for entry in content.slides)
    return [("subject", tr("report_case", lang), content.case_id),
            ("slide-ids", tr("report_slides_title", lang), slide_ids)]


def detail_rows(content: ReportContent, lang: str) -> list[tuple[str, str, str]]:
    """Return (html id, name, value) rows: subject, specimen, scheme, readers, model, sign-off."""
    scheme = content.scheme
    labels = (tr("report_labels_primary", lang) if content.count_reader is None
              else tr("report_labels_of_reader", lang, reader=content.count_reader))
    none = tr("report_none", lang)
    return [
        *subject_rows(content, lang),
        ("specimen", tr("report_specimen", lang),
         tr(f"report_specimen_{scheme.specimen}", lang)),
        ("scheme", tr("report_scheme", lang),
         f"{scheme.title(lang)}; {scheme.name} v{scheme.version}"),
        ("readers", tr("report_readers", lang), ", ".join(content.readers) or none),
        ("labels-counted", tr("report_labels_counted", lang), labels),
        ("model-version", tr("report_model_version", lang),
         ", ".join(content.model_versions) or none),
        ("signoff", tr("report_signoff_title", lang), report_signoff_text(content, lang)),
    ]


def hint_texts(differential: Differential, lang: str) -> tuple[str, str]:
    """Return the WHO and the ICC blast band, or "no band" for each when nothing was counted."""
    no_hint = tr("report_no_hint", lang)
    return (tr(differential.who_band, lang) if differential.who_band else no_hint,
            tr(differential.icc_band, lang) if differential.icc_band else no_hint)


def blast_cell(differential: Differential) -> str:
    """Return "4.8 (3.2-7.0)": blast % and its 95% interval, or "-" with no cells counted."""
    if differential.blast_percent is None:
        return "-"
    low, high = differential.blast_ci95
    return f"{differential.blast_percent:.1f} ({low:.1f}-{high:.1f})"


def convention_lines(content: ReportContent, lang: str) -> list[str]:
    """Return the conventions the count applied: M:E side, blast equivalents, intervals."""
    conventions = content.differential.conventions
    lines = []
    if content.scheme.specimen != "peripheral_blood":
        icsh = conventions["me_convention"] == "icsh"
        lines.append(tr("report_me_icsh" if icsh else "report_me_no_monocytes", lang))
    equivalents = [tr("report_equiv_" + item.replace("-", "_"), lang)
                   for item in conventions["blast_equivalents"]]
    if equivalents:
        lines.append(tr("report_blast_equivalents", lang, items=", ".join(equivalents)))
    else:
        lines.append(tr("report_blast_equivalents_none", lang))
    lines.append(tr("report_ci_method", lang))
    return lines


def generated_line(content: ReportContent, lang: str) -> str:
    """Return when and by which napari-alma version the report was made."""
    return tr("report_generated", lang, time=content.generated_at, version=content.version)
