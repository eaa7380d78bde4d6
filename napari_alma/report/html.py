"""The count report as one self-contained HTML page, in English or Spanish.

Every text taken from the store or the user (reader names, case ids, scheme titles) is
escaped. The bar chart is inline SVG, so the page needs no other file and no network.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from napari_alma.core.i18n import get_language, tr
from napari_alma.report import sections
from napari_alma.report import text as count_text
from napari_alma.report.chart import chart_svg
from napari_alma.report.content import ReportContent
from napari_alma.store.files import write_atomic

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif; margin: 2em auto;
       max-width: 60em; color: #1a1a1a; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.details th { background: #f4f4f4; width: 16em; }
table.hints td { width: 50%; }
.disclaimer { font-weight: bold; color: #8a1c1c; }
.warnings li { color: #8a4b00; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border: 1px solid #666;
          margin-right: 0.4em; vertical-align: middle; }
svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; } }
"""


def render_html(content: ReportContent, lang: str | None = None) -> str:
    """Return the report as an HTML document in ``lang`` ("en" or "es")."""
    lang = get_language(lang)
    sections = [
        _header(lang),
        _details(content, lang),
        _summary(content, lang),
        _hints(content, lang),
        _warnings(content, lang),
        _counts(content, lang),
        _chart(content, lang),
        _slides(content, lang) if content.case_id is not None else "",
        _conventions(content, lang),
        _footer(content, lang),
    ]
    return (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(_title(content, lang))}</title>\n<style>{STYLE}</style>\n"
            "</head>\n<body>\n" + "\n".join(s for s in sections if s) + "\n</body>\n</html>\n")


def write_html(content: ReportContent, path: str | Path, lang: str | None = None) -> Path:
    """Write the HTML report to ``path`` through a temporary file; return the path."""
    return write_atomic(path, render_html(content, lang))


def _title(content: ReportContent, lang: str) -> str:
    subject = content.case_id if content.case_id is not None else content.slides[0].slide_id
    return f"{tr('report_title', lang)}: {subject}"


def _header(lang: str) -> str:
    return (f"<header>\n<h1>{escape(tr('report_title', lang))}</h1>\n"
            f'<p class="disclaimer">{escape(tr("report_disclaimer", lang))}</p>\n</header>')


def _details(content: ReportContent, lang: str) -> str:
    body = "\n".join(f'<tr><th>{escape(name)}</th><td id="{key}">{escape(value)}</td></tr>'
                     for key, name, value in sections.detail_rows(content, lang))
    return f'<section>\n<table class="details">\n{body}\n</table>\n</section>'


def _summary(content: ReportContent, lang: str) -> str:
    differential = content.differential
    items = [
        ("total-counted", tr("total_counted", lang, total=differential.total_counted,
                             target=differential.target)),
        ("unreviewed", tr("unreviewed", lang, n=differential.unreviewed)),
        ("blast-percent", count_text.blast_line(differential, lang)),
        ("me-ratio", count_text.me_line(differential, lang)),
    ]
    lines = [f'<li id="{key}">{escape(value)}</li>' for key, value in items]
    lines += [f'<li class="per-100">{escape(line)}</li>'
              for line in count_text.per_100_lines(differential, content.scheme, lang)]
    return _section("summary", tr("report_summary", lang), "<ul>\n" + "\n".join(lines) + "\n</ul>")


def _hints(content: ReportContent, lang: str) -> str:
    who_hint, icc_hint = sections.hint_texts(content.differential, lang)
    table = (f'<table class="hints">\n<tr><th>{escape(tr("report_who", lang))}</th>'
             f'<th>{escape(tr("report_icc", lang))}</th></tr>\n'
             f'<tr><td id="who-hint">{escape(who_hint)}</td>'
             f'<td id="icc-hint">{escape(icc_hint)}</td></tr>\n</table>\n'
             f'<p id="hint-disclaimer">{escape(tr("hint_disclaimer", lang))}</p>')
    return _section("hints", tr("report_hints_title", lang), table)


def _warnings(content: ReportContent, lang: str) -> str:
    lines = count_text.warning_lines(content.differential, lang)
    if not lines:
        body = f"<p>{escape(tr('report_no_warnings', lang))}</p>"
    else:
        body = ('<ul class="warnings">\n'
                + "\n".join(f"<li>{escape(line)}</li>" for line in lines) + "\n</ul>")
    return _section("warnings", tr("report_warnings_title", lang), body)


def _counts(content: ReportContent, lang: str) -> str:
    differential, scheme = content.differential, content.scheme
    headers = [tr("class", lang), tr("report_code", lang), tr("count", lang), "%",
               tr("ci95", lang)]
    rows = []
    for code, (name, count, percent, interval) in zip(
            differential.counts, count_text.counted_rows(differential, scheme, lang)):
        rows.append(f'<tr data-code="{escape(code)}"><td>{_swatch(scheme[code].color)}'
                    f"{escape(name)}</td><td>{escape(code)}</td>"
                    f'<td class="number">{count}</td><td class="number">{percent}</td>'
                    f'<td class="number">{interval}</td></tr>')
    table = _table("counts", headers, rows)
    excluded = [(code, n) for code, n in differential.excluded.items() if n]
    if excluded:
        excluded_rows = [f'<tr data-code="{escape(code)}"><td>{escape(scheme[code].name(lang))}'
                         f'</td><td>{escape(code)}</td><td class="number">{n}</td></tr>'
                         for code, n in excluded]
        excluded_table = _table("excluded", [tr("class", lang), tr("report_code", lang),
                                             tr("count", lang)], excluded_rows)
    else:
        excluded_table = f"<p>{escape(tr('report_excluded_none', lang))}</p>"
    body = f"{table}\n<h3>{escape(tr('excluded_title', lang))}</h3>\n{excluded_table}"
    return _section("counts", tr("report_counts_title", lang), body)


def _chart(content: ReportContent, lang: str) -> str:
    if content.differential.total_counted == 0:
        return ""
    return _section("chart", tr("report_chart_title", lang), chart_svg(content, lang))


def _slides(content: ReportContent, lang: str) -> str:
    headers = [tr("report_slide", lang), tr("report_primary_reader", lang),
               tr("report_counted", lang), tr("report_blasts", lang),
               tr("report_signoff_title", lang)]
    rows = []
    for entry in content.slides:
        differential = entry.differential
        rows.append(f'<tr data-slide="{escape(entry.slide_id)}"><td>{escape(entry.slide_id)}'
                    f"</td><td>{escape(entry.primary_reader or '-')}</td>"
                    f'<td class="number">{differential.total_counted}</td>'
                    f'<td class="number">{sections.blast_cell(differential)}</td>'
                    f"<td>{escape(sections.signoff_text(entry.signoff, lang))}</td></tr>")
    return _section("slides", tr("report_slides_title", lang), _table("slides", headers, rows))


def _conventions(content: ReportContent, lang: str) -> str:
    lines = sections.convention_lines(content, lang)
    body = "<ul>\n" + "\n".join(f"<li>{escape(line)}</li>" for line in lines) + "\n</ul>"
    return _section("conventions", tr("report_conventions", lang), body)


def _footer(content: ReportContent, lang: str) -> str:
    generated = sections.generated_line(content, lang)
    return (f'<footer>\n<p id="generated">{escape(generated)}</p>\n'
            f'<p class="disclaimer">{escape(tr("research_use", lang))}</p>\n</footer>')


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}">\n<h2>{escape(title)}</h2>\n{body}\n</section>'


def _table(css_class: str, headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    return (f'<table class="{css_class}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody>\n</table>")


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{escape(color)}"></span>'
