"""The content of a count report, gathered from a project: the count, slides and provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from napari_alma import __version__
from napari_alma.core.counting import Differential
from napari_alma.core.scheme import ClassScheme
from napari_alma.report.signoff import SignOff, read_signoff
from napari_alma.store.project import Project


@dataclass
class SlideEntry:
    """One slide of a report: its pseudonymous id, count, primary reader and sign-off."""

    slide_id: str
    differential: Differential
    primary_reader: str | None
    signoff: SignOff | None


@dataclass
class ReportContent:
    """Everything a report states, in no particular language.

    ``case_id`` is None for a one-slide report. ``count_reader`` is the reader whose labels
    were counted, or None for each slide's primary reader.
    """

    scheme: ClassScheme
    differential: Differential
    slides: list[SlideEntry]
    case_id: str | None
    readers: list[str]
    count_reader: str | None
    model_versions: list[str]
    generated_at: str
    version: str = __version__

    @property
    def signed_slides(self) -> int:
        """Number of the report's slides that are signed off."""
        return sum(entry.signoff is not None for entry in self.slides)


def slide_report(
    project: Project, slide_id: str, reader: str | None = None, **settings
) -> ReportContent:
    """Gather the report of one slide; ``settings`` go to the count (target, conventions)."""
    differential = project.count(slide_id, reader=reader, **settings)
    return _content(project, differential, [differential], None, reader)


def case_report(
    project: Project, case_id: str, reader: str | None = None, **settings
) -> ReportContent:
    """Gather the report of a case: the summed count and one entry per slide."""
    case = project.count_case(case_id, reader=reader, **settings)
    return _content(project, case.differential, case.slides, case_id, reader)


def _content(project: Project, differential: Differential, slides: list[Differential],
             case_id: str | None, reader: str | None) -> ReportContent:
    entries, readers, versions = [], set(), set()
    for slide in slides:
        row = project.slide(slide.slide_id)
        entries.append(SlideEntry(slide.slide_id, slide, row["primary_reader"],
                                  read_signoff(project, slide.slide_id)))
        readers.update(project.events(slide.slide_id)["reader"])
        versions.update(project.cell_table(slide.slide_id, reader=reader)["model_version"])
    return ReportContent(
        scheme=project.scheme,
        differential=differential,
        slides=entries,
        case_id=case_id,
        readers=sorted(readers),
        count_reader=reader,
        model_versions=sorted(version for version in versions if version),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    )
