"""Second reads of a slide: blind reads by another reader, their agreement, adjudication.

A second reader labels the same cells as the primary reader (the first who labelled the
slide). Both sets of labels stay apart in the event log, as every reader's do. The start
and end of a blind read are slide events (``start_second_read``, ``end_second_read``).
Where the readers disagree, an adjudicator records the agreed class as an ``adjudicate``
cell event (reader: the adjudicator, new class: the agreed class), which the slide's
count then uses in place of the primary reader's label.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from napari_alma.core.agreement import Agreement, compare_labels
from napari_alma.store.labels import adjudicated_classes, disputed_cells, labels_by_reader
from napari_alma.store.project import Project, StoreError, default_reader, utc_now
from napari_alma.store.signoff import check_writable


# -- blind reads ---------------------------------------------------------------------------
def start_second_read(project: Project, slide_id: str, reader: str) -> None:
    """Record ``reader`` starting a blind second read of the slide.

    Raises
    ------
    ValueError
        When ``reader`` is the slide's primary reader, whose labels a second read is
        compared with.
    """
    primary = project.slide(slide_id)["primary_reader"]
    if primary is not None and primary == reader:
        raise ValueError(
            f"{reader} is the primary reader of slide {slide_id}; a second read needs "
            "another reader's name."
        )
    if not is_reading_blind(project, slide_id, reader):
        project.record_slide_event(slide_id, "start_second_read", reader, blind=True)


def end_second_read(project: Project, slide_id: str, reader: str) -> None:
    """Record ``reader`` ending their blind second read; nothing is recorded if none is open."""
    if is_reading_blind(project, slide_id, reader):
        project.record_slide_event(slide_id, "end_second_read", reader)


def is_reading_blind(project: Project, slide_id: str, reader: str) -> bool:
    """Return True while ``reader`` has a blind second read of the slide started and not ended."""
    events = project.slide_events(slide_id)
    events = events[events["action"].isin(("start_second_read", "end_second_read"))
                    & (events["reader"] == reader)]
    return bool(len(events)) and events["action"].iloc[-1] == "start_second_read"


def second_readers(project: Project, slide_id: str) -> list[str]:
    """Return the readers who started a second read of the slide, first one first."""
    events = project.slide_events(slide_id, action="start_second_read")
    return list(dict.fromkeys(events["reader"]))


# -- agreement -------------------------------------------------------------------------------
@dataclass
class SlideReadings:
    """Every reader's labels on a slide's live cells, read once from the store.

    ``cells`` is indexed by cell id with the columns ``row, col``. ``labels`` has one row
    per live cell and one column per reader with at least one label, the primary reader
    first (an empty string where a reader did not label the cell). ``adjudicated`` maps
    cell ids to their newest adjudicated class.
    """

    slide_id: str
    cells: pd.DataFrame
    labels: pd.DataFrame
    adjudicated: pd.Series
    primary_reader: str | None
    second_readers: list[str]

    @property
    def readers(self) -> list[str]:
        """The readers with labels, the primary reader first."""
        return list(self.labels.columns)


def read_labels(project: Project, slide_id: str) -> SlideReadings:
    """Read the slide's cells, events and second reads once, for the functions below."""
    cells = project.cell_table(slide_id).set_index("cell_id")[["row", "col"]]
    events = project.events(slide_id)
    labels = labels_by_reader(events)
    labels = labels.loc[labels.index.intersection(cells.index)]
    readers = [reader for reader in labels.columns if (labels[reader] != "").any()]
    primary = project.slide(slide_id)["primary_reader"]
    if primary in readers:
        readers.remove(primary)
        readers.insert(0, primary)
    return SlideReadings(
        slide_id=slide_id,
        cells=cells,
        labels=labels[readers],
        adjudicated=adjudicated_classes(events),
        primary_reader=primary,
        second_readers=second_readers(project, slide_id),
    )


def readers_with_labels(project: Project, slide_id: str) -> list[str]:
    """Return the readers who labelled the slide's live cells: the primary reader first."""
    return read_labels(project, slide_id).readers


def default_pair(
    project: Project, slide_id: str, readings: SlideReadings | None = None
) -> tuple[str, str]:
    """Return the readers to compare by default: the primary reader and the second reader.

    The second reader is the first who started a second read and labelled cells, else
    the first other reader with labels. ``readings`` saves reading the store again.

    Raises
    ------
    ValueError
        When fewer than two readers labelled the slide.
    """
    readings = readings or read_labels(project, slide_id)
    readers = readings.readers
    if len(readers) < 2:
        raise ValueError(
            f"Slide {slide_id} has labels from {len(readers)} reader(s) "
            f"({', '.join(readers) or 'none'}); agreement needs two. Ask a second reader to "
            "open the slide blind (`napari-alma open SLIDE --project P --reader NAME --blind`)."
        )
    others = [reader for reader in readings.second_readers if reader in readers[1:]]
    return readers[0], (others or readers[1:])[0]


def compare_readers(
    project: Project,
    slide_id: str,
    readers: tuple[str, str] | None = None,
    readings: SlideReadings | None = None,
) -> Agreement:
    """Return the agreement of two readers on the slide's live (not deleted) cells.

    ``readers`` defaults to :func:`default_pair`. A reader without any label is an error
    naming the readers who have labels. ``readings`` saves reading the store again.
    """
    readings = readings or read_labels(project, slide_id)
    reader_a, reader_b = readers or default_pair(project, slide_id, readings)
    if reader_a == reader_b:
        raise ValueError(f"Compare two different readers; both are {reader_a!r}.")
    for reader in (reader_a, reader_b):
        if reader not in readings.readers:
            raise ValueError(
                f"Reader {reader!r} has no labels on slide {slide_id}; readers with labels: "
                f"{', '.join(readings.readers) or 'none'}."
            )
    labels = readings.labels
    return compare_labels(labels[reader_a], labels[reader_b], reader_a, reader_b,
                          scheme=project.scheme)


def disagreement_table(
    project: Project,
    slide_id: str,
    agreement: Agreement,
    readings: SlideReadings | None = None,
) -> pd.DataFrame:
    """Return the agreement's disagreements with each cell's position and agreed class.

    Columns: ``cell_id, row, col, class_a, class_b, adjudicated`` (empty until an
    adjudicator settles the cell), ordered by cell id.
    """
    readings = readings or read_labels(project, slide_id)
    table = agreement.disagreements.join(readings.cells, on="cell_id")
    adjudicated = table["cell_id"].map(readings.adjudicated).astype(object)
    table["adjudicated"] = adjudicated.where(adjudicated.notna(), "")
    return table[["cell_id", "row", "col", "class_a", "class_b", "adjudicated"]]


# -- adjudication ----------------------------------------------------------------------------
def adjudicate(
    project: Project, slide_id: str, cell_ids, code: str, reader: str | None = None
) -> int:
    """Record ``reader`` (the adjudicator) settling cells on class ``code``; return how many.

    Every reader's own labels stay as they were; the newest adjudication of a cell is
    the class the slide's count uses for it.

    Raises
    ------
    ValueError
        When ``code`` is not a class of the project's scheme.
    StoreError
        When a cell id is not a live cell of the slide, or readers did not class it
        differently (there is nothing to settle).
    """
    if code not in project.scheme:
        raise ValueError(
            f"Class {code!r} is not in scheme {project.scheme.name!r}; "
            f"valid codes: {', '.join(project.scheme.codes)}."
        )
    reader = reader or default_reader()
    cell_ids = [int(cell_id) for cell_id in cell_ids]
    table = project.cell_table(slide_id).set_index("cell_id")
    missing = sorted(set(cell_ids) - set(table.index))
    if missing:
        raise StoreError(f"Slide {slide_id} has no live cells with ids {missing}.")
    events = project.events(slide_id)
    undisputed = sorted(set(cell_ids) - set(disputed_cells(events, cell_ids)))
    if undisputed:
        raise StoreError(
            f"Slide {slide_id}: cells {undisputed} are not a disagreement between readers "
            "(fewer than two readers labelled them, or they gave the same class), so there "
            "is nothing to adjudicate. Label them as a reader instead."
        )
    previous = adjudicated_classes(events)
    now = utc_now()
    with project.transaction() as db:
        # A finalised slide's count is signed, so adjudicating it needs a reopen first.
        check_writable(db, slide_id)
        for cell_id in cell_ids:
            old = previous.get(cell_id) or table.loc[cell_id, "class"] or None
            db.execute(
                "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class,"
                " new_class, model_version) VALUES (?, ?, ?, ?, 'adjudicate', ?, ?, ?)",
                (slide_id, cell_id, reader, now, old, code,
                 table.loc[cell_id, "model_version"] or None),
            )
    return len(cell_ids)
