"""Undo and redo of a reader's changes on a slide, derived from the event log.

Nothing is ever removed from the log: an undo appends events that restore the previous
state, each with ``undoes`` set to the id of the event it reverts, and a redo appends
events that revert the undo's events. The undo and redo stacks are rebuilt from the log
on every call, so they survive a restart and stay right when the same reader works on
the slide in two windows.

A step is one reader action, possibly on many cells. The events that one call of the
store writes share the same ``time`` value (to the microsecond), so consecutive events of
a reader on a slide with equal ``time`` form one step. Reverting an event means:

============================  ==============================================
event                         revert
============================  ==============================================
label, review, unlabel        ``label`` back to ``old_class``, or ``unlabel``
                              when the cell had no label before
add                           ``delete``
delete                        ``restore``
restore                       ``delete``
============================  ==============================================

Stacks are per reader and slide. Adjudication is not undone here.

NOTE: two separate calls by one reader on one slide within the clock's resolution would
share a ``time`` and be undone together; on Windows before Python 3.13 that resolution can
be about 16 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from napari_alma.store.cell_state import current_states
from napari_alma.store.project import Project, default_reader, utc_now

UNDOABLE_ACTIONS = ("label", "review", "unlabel", "add", "delete", "restore")
_REVERT_DELETION = {"add": "delete", "delete": "restore", "restore": "delete"}


@dataclass(frozen=True)
class Step:
    """One reader action: its events (oldest first), all with the same ``time``."""

    events: pd.DataFrame

    @property
    def event_ids(self) -> list[int]:
        """Ids of the step's events."""
        return [int(e) for e in self.events["event_id"]]

    @property
    def cell_ids(self) -> list[int]:
        """Ids of the cells the step changed, each once, in event order."""
        return list(dict.fromkeys(int(c) for c in self.events["cell_id"]))

    @property
    def action(self) -> str:
        """The action of the step's first event ("label", "delete", ...)."""
        return str(self.events["action"].iloc[0])

    @property
    def reverts(self) -> set[int]:
        """Ids of the events this step reverts (empty for a new action)."""
        return {int(e) for e in self.events["undoes"].dropna()}


@dataclass(frozen=True)
class History:
    """A reader's undo and redo stacks on one slide; the last element is the top."""

    undo: list[Step]
    redo: list[Step]


def history(project: Project, slide_id: str, reader: str | None = None) -> History:
    """Rebuild ``reader``'s undo and redo stacks on ``slide_id`` from the event log.

    A step whose ``undoes`` names the events of the top undo step is an undo. A step that
    names the events of the top redo step is a redo. Any other step is a new action, and
    it clears the redo stack.
    """
    undo: list[Step] = []
    redo: list[Step] = []
    for step in _steps(project, slide_id, reader or default_reader()):
        reverted = step.reverts
        if reverted and undo and reverted == set(undo[-1].event_ids):
            undo.pop()
            redo.append(step)
        elif reverted and redo and reverted == set(redo[-1].event_ids):
            redo.pop()
            undo.append(step)
        else:
            undo.append(step)
            redo.clear()
    return History(undo, redo)


def undo(project: Project, slide_id: str, reader: str | None = None) -> Step | None:
    """Revert ``reader``'s newest step on the slide; return it, or None if nothing to undo.

    Raises
    ------
    ReadOnlySlideError
        When the slide is finalised.
    """
    stack = history(project, slide_id, reader).undo
    return _revert(project, slide_id, reader, stack[-1]) if stack else None


def redo(project: Project, slide_id: str, reader: str | None = None) -> Step | None:
    """Apply again ``reader``'s newest undone step; return it, or None if nothing to redo.

    Raises
    ------
    ReadOnlySlideError
        When the slide is finalised.
    """
    stack = history(project, slide_id, reader).redo
    return _revert(project, slide_id, reader, stack[-1]) if stack else None


def _steps(project: Project, slide_id: str, reader: str) -> list[Step]:
    events = project.events(slide_id)
    events = events[(events["reader"] == reader) & events["action"].isin(UNDOABLE_ACTIONS)]
    if events.empty:
        return []
    # A new step starts wherever the time changes from one event to the next.
    step_number = (events["time"] != events["time"].shift()).cumsum()
    return [Step(group.reset_index(drop=True)) for _, group in events.groupby(step_number)]


def _revert(project: Project, slide_id: str, reader: str | None, step: Step) -> Step:
    from napari_alma.store.signoff import check_writable

    reader = reader or default_reader()
    now = utc_now()
    with project.transaction() as db:
        check_writable(db, slide_id)
        states = current_states(db, slide_id, step.cell_ids, reader)
        for event in reversed(list(step.events.itertuples(index=False))):
            state = states[int(event.cell_id)]
            action, old_class, new_class = _reverting_event(event, state)
            db.execute(
                "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class,"
                " new_class, model_version, undoes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (slide_id, int(event.cell_id), reader, now, action, old_class, new_class,
                 state.model_version or None, int(event.event_id)),
            )
    return step


def _reverting_event(event, state) -> tuple[str, str | None, str | None]:
    """Return (action, old_class, new_class) of the event that reverts ``event``."""
    if event.action in _REVERT_DELETION:
        return _REVERT_DELETION[event.action], state.label or None, state.shown or None
    previous = event.old_class if isinstance(event.old_class, str) and event.old_class else None
    return ("label" if previous else "unlabel"), state.label or None, previous
