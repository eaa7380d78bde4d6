"""Sign-off of a slide's review: finalise (when the count is complete) and reopen.

A slide is finalised when its newest ``finalise``/``reopen`` slide event is a
``finalise``. While it is, the store rejects every cell change on it (labels, reviews,
additions, deletions, undo, new predictions) with :class:`ReadOnlySlideError`, so the
command line and every window obey it alike. Finalising is rejected while unreviewed cells
have a model confidence under the threshold, or while the counted total is under the
target. Reopening needs a reason. Both are logged in the slide's append-only
``slide_events`` with the reader.
"""

from __future__ import annotations

import shlex
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from napari_alma.core.counting import DEFAULT_TARGET
from napari_alma.core.i18n import tr
from napari_alma.core.review_queue import DEFAULT_CONFIDENCE_THRESHOLD, below_threshold_mask
from napari_alma.store.project import Project, StoreError, default_reader

SIGNOFF_ACTIONS = ("finalise", "reopen")


class ReadOnlySlideError(StoreError):
    """A change was requested on a finalised slide."""


class FinaliseRefusedError(StoreError):
    """The slide cannot be finalised yet, for the ``reasons`` listed."""

    def __init__(self, message: str, reasons: list[Reason]):
        super().__init__(message)
        self.reasons = reasons


@dataclass(frozen=True)
class Reason:
    """One reason a slide cannot be finalised: a message key of ``review.yaml`` and values."""

    key: str
    values: dict = field(default_factory=dict)

    def text(self, lang: str | None = None) -> str:
        """Return the reason in ``lang``."""
        return tr(self.key, lang, **self.values)


def signoff_state(db: sqlite3.Connection, slide_id: str) -> dict | None:
    """Return the newest finalise/reopen event of a slide as a dict, or None if never."""
    row = db.execute(
        "SELECT action, reader, time, detail FROM slide_events WHERE slide_id=? AND action IN"
        " ('finalise', 'reopen') ORDER BY event_id DESC LIMIT 1",
        (slide_id,),
    ).fetchone()
    return dict(zip(("action", "reader", "time", "detail"), row)) if row else None


def last_signoff(project: Project, slide_id: str) -> dict | None:
    """Return the slide's newest finalise/reopen event (action, reader, time), or None."""
    return signoff_state(project._connection, slide_id)


def is_finalised(project: Project, slide_id: str) -> bool:
    """Return True while ``slide_id`` is finalised (its labels read-only)."""
    state = last_signoff(project, slide_id)
    return state is not None and state["action"] == "finalise"


def check_writable(db: sqlite3.Connection, slide_id: str) -> None:
    """Raise :class:`ReadOnlySlideError` when the slide is finalised.

    Call it inside the transaction that writes, so that a sign-off from another window
    cannot slip between the check and the write.
    """
    state = signoff_state(db, slide_id)
    if state is not None and state["action"] == "finalise":
        # The main database's file lies in the project folder, which the message names.
        database_file = db.execute("PRAGMA database_list").fetchone()[2]
        raise ReadOnlySlideError(tr(
            "review_read_only", None, slide=slide_id, reader=state["reader"],
            time=state["time"][:19].replace("T", " "),
            project=shlex.quote(str(Path(database_file).parent)),
        ))


def finalise_blockers(
    project: Project,
    slide_id: str,
    reader: str | None = None,
    target: int = DEFAULT_TARGET,
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> list[Reason]:
    """Return why ``reader`` cannot finalise the slide yet (empty when it can).

    Counts use ``reader``'s labels (by default the slide's primary reader's), like the
    count shown to that reader.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"The confidence threshold must lie between 0 and 1, got {threshold}.")
    if target < 1:
        raise ValueError(f"The target must be a positive number of cells, got {target}.")
    table = project.cell_table(slide_id, reader=reader)
    reasons = []
    uncertain = int(below_threshold_mask(table, threshold).sum())
    if uncertain:
        reasons.append(Reason("review_refused_uncertain",
                              {"n": uncertain, "threshold": f"{threshold:.2f}"}))
    total = project.count(slide_id, reader=reader, target=target).total_counted
    if total < target:
        reasons.append(Reason("review_refused_target", {"total": total, "target": target}))
    if is_finalised(project, slide_id):
        reasons.append(Reason("review_refused_finalised", {"slide": slide_id}))
    return reasons


def finalise(
    project: Project,
    slide_id: str,
    reader: str | None = None,
    target: int = DEFAULT_TARGET,
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    lang: str | None = None,
) -> int:
    """Sign off the slide's count and make its labels read-only; return the event id.

    Raises
    ------
    FinaliseRefusedError
        With every reason, in ``lang``, when the slide cannot be finalised yet.
    """
    reader = reader or default_reader()
    reasons = finalise_blockers(project, slide_id, reader, target, threshold)
    if reasons:
        lines = [tr("review_refused", lang, slide=slide_id)]
        lines += [f"- {reason.text(lang)}" for reason in reasons]
        raise FinaliseRefusedError("\n".join(lines), reasons)
    total = project.count(slide_id, reader=reader, target=target).total_counted
    return project.record_slide_event(
        slide_id, "finalise", reader, target=target, threshold=threshold, total_counted=total
    )


def reopen(project: Project, slide_id: str, reason: str, reader: str | None = None,
           lang: str | None = None) -> int:
    """Make a finalised slide's labels editable again, logging who and why; return the id.

    Raises
    ------
    StoreError
        When the slide is not finalised or ``reason`` is empty.
    """
    if not reason or not reason.strip():
        raise StoreError(tr("review_reopen_needs_reason", lang))
    if not is_finalised(project, slide_id):
        raise StoreError(tr("review_not_finalised", lang, slide=slide_id))
    return project.record_slide_event(slide_id, "reopen", reader or default_reader(),
                                      reason=reason.strip())
