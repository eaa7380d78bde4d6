"""Undo, redo, the review queue and sign-off, acting on a viewer's review session.

Keys, chosen to clash with no class letter (a-z are class keys) and no napari 0.9.2
default binding on the viewer, Image or Points layers:

- Ctrl+Z: undo the reader's last change on the slide; Ctrl+Shift+Z: redo it. napari binds
  these on Labels layers only, so nothing of napari is lost. On macOS, Ctrl is Cmd.
- "." (full stop): next cell to review in the queue's order; "," (comma): previous cell.
"""

from __future__ import annotations

import logging
import weakref

import numpy as np

from napari_alma.core import review_queue
from napari_alma.core.i18n import tr
from napari_alma.store import signoff, undo
from napari_alma.widgets import relabel

logger = logging.getLogger(__name__)

UNDO_KEY = "Control-Z"
REDO_KEY = "Control-Shift-Z"
NEXT_KEY = "."
PREVIOUS_KEY = ","

# Steps made only of these change classes, not cells, so the layer is updated in place.
LABEL_STEP_ACTIONS = {"label", "review", "unlabel"}

_QUEUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def desk_actions(session) -> dict:
    """Return the desk's key bindings: napari key name -> action without arguments."""
    from napari_alma.widgets.keys import run_action

    return {
        UNDO_KEY: lambda: run_action(session, undo_last, session),
        REDO_KEY: lambda: run_action(session, redo_last, session),
        NEXT_KEY: lambda: run_action(session, go_to_next, session),
        PREVIOUS_KEY: lambda: run_action(session, go_to_previous, session),
    }


# -- undo and redo -----------------------------------------------------------------------
def undo_last(session) -> undo.Step | None:
    """Undo the reader's newest change on the slide, show it and select its cells."""
    step = undo.undo(session.project, session.slide_id, session.reader)
    return _after_revert(session, step, "review_undone", "review_nothing_to_undo")


def redo_last(session) -> undo.Step | None:
    """Redo the reader's newest undone change on the slide, show it and select its cells."""
    step = undo.redo(session.project, session.slide_id, session.reader)
    return _after_revert(session, step, "review_redone", "review_nothing_to_redo")


def _after_revert(session, step, done_key: str, nothing_key: str):
    if step is None:
        _info(tr(nothing_key, session.language))
        return None
    if set(step.events["action"]) <= LABEL_STEP_ACTIONS:
        relabel.show_stored(session, step.cell_ids)
        session.notify_changed()
    else:
        session.refresh()
    session.select_ids(step.cell_ids)
    action = tr(f"review_action_{step.action}", session.language)
    _info(tr(done_key, session.language, action=action, n=len(step.cell_ids)))
    return step


# -- the review queue ------------------------------------------------------------------------
class ReviewQueue:
    """The order in which a session's reader visits the cells, and the cell shown now.

    The order is computed once per strategy from the store's cell table, and again when
    cells are added or deleted. Which cells are still to review is read from the layer at
    each step, so a cell leaves the queue as soon as it is labelled.

    Parameters
    ----------
    session : ReviewSession
        The review session whose cells layer is walked.
    strategy : str
        One of :data:`napari_alma.core.review_queue.STRATEGIES`.
    threshold : float
        Model confidence under which an unreviewed cell blocks sign-off.
    """

    def __init__(self, session, strategy: str = "entropy",
                 threshold: float = review_queue.DEFAULT_CONFIDENCE_THRESHOLD):
        self._session = weakref.ref(session)
        self.strategy = strategy
        self.threshold = threshold
        self.current: int | None = None
        self._order: np.ndarray | None = None
        self._table = None
        self._table_key: tuple = ()

    @property
    def session(self):
        """The review session (the queue keeps only a weak reference to it)."""
        return self._session()

    def set_strategy(self, strategy: str) -> None:
        """Order the queue by ``strategy`` from now on."""
        if strategy not in review_queue.STRATEGIES:
            raise ValueError(f"Unknown review order {strategy!r}; expected one of "
                             f"{', '.join(review_queue.STRATEGIES)}.")
        self.strategy = strategy
        self._order = None

    def table(self):
        """Return the store's cell table of the session's slide and reader.

        The table is read again only when cells were added or deleted, or the reader
        changed. The queue uses its positions and predictions, which labels do not change,
        and the classes at the time the order was made.
        """
        session = self.session
        key = (session.reader, frozenset(self._layer_ids().tolist()))
        if self._table is None or key != self._table_key:
            self._table = session.project.cell_table(session.slide_id, reader=session.reader)
            self._table_key = key
            self._order = None
        return self._table

    def order(self) -> np.ndarray:
        """Return the cell ids in queue order (recomputed when the cells changed)."""
        table = self.table()
        if self._order is None:
            session = self.session
            self._order = review_queue.queue_order(
                table, self.strategy, class_order=session.scheme.codes,
                band_height=band_height_px(session.slide["mpp"]),
            )
        return self._order

    def step(self, direction: int) -> int | None:
        """Show the next (1) or previous (-1) cell: select it and centre the view on it."""
        features = self.session.cells_layer.features
        pending = set(features["cell_id"][~features["reviewed"].to_numpy(bool)].tolist())
        cell_id = review_queue.next_cell(self.order(), self.current, pending, direction)
        if cell_id is not None:
            self.show(cell_id)
        return cell_id

    def show(self, cell_id: int) -> None:
        """Select ``cell_id`` and centre the viewer on it, keeping the zoom."""
        session = self.session
        layer = session.cells_layer
        row = int(np.flatnonzero(self._layer_ids() == cell_id)[0])
        session.select_ids([cell_id])
        centre = layer.data_to_world(layer.data[row])
        camera_of(session.viewer).center = tuple(np.asarray(centre)[-2:])
        self.current = int(cell_id)

    def progress(self) -> review_queue.Progress:
        """Return reviewed / total cells and those under the threshold, from the layer."""
        features = self.session.cells_layer.features
        return review_queue.progress_of(~features["reviewed"].to_numpy(bool),
                                        features["confidence"].to_numpy(float), self.threshold)

    def _layer_ids(self) -> np.ndarray:
        return self.session.cells_layer.features["cell_id"].to_numpy(int)


def camera_of(viewer):
    """Return the viewer's camera: ``viewer.scene.camera`` from napari 0.9, else ``camera``."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def band_height_px(mpp: float | None) -> float:
    """Return the height of a serpentine band in level-0 pixels (100 µm, or 400 px)."""
    return review_queue.DEFAULT_BAND_UM / mpp if mpp else 400.0


def queue_of(session) -> ReviewQueue:
    """Return the session's review queue, created on first use."""
    if session not in _QUEUES:
        _QUEUES[session] = ReviewQueue(session)
    return _QUEUES[session]


def go_to_next(session) -> int | None:
    """Show the next cell to review; tell the reader when none is left."""
    cell_id = queue_of(session).step(1)
    if cell_id is None:
        _info(tr("review_queue_done", session.language))
    return cell_id


def go_to_previous(session) -> int | None:
    """Show the cell before the current one in the queue's order."""
    return queue_of(session).step(-1)


# -- sign-off -----------------------------------------------------------------------------------
def finalise_slide(session, target: int, threshold: float) -> int:
    """Finalise the session's slide; raise ``FinaliseRefusedError`` with the reasons."""
    event_id = signoff.finalise(session.project, session.slide_id, session.reader,
                                target=target, threshold=threshold, lang=session.language)
    total = session.project.count(session.slide_id, reader=session.reader).total_counted
    _info(tr("review_finalised_done", session.language, slide=session.slide_id, total=total))
    session.refresh()
    return event_id


def reopen_slide(session, reason: str) -> int:
    """Reopen the session's finalised slide, logging the reader and ``reason``."""
    event_id = signoff.reopen(session.project, session.slide_id, reason, session.reader,
                              lang=session.language)
    _info(tr("review_reopened", session.language, slide=session.slide_id))
    session.refresh()
    return event_id


def signoff_text(session) -> str:
    """Return the slide's sign-off state as a sentence in the reader's language."""
    state = signoff.last_signoff(session.project, session.slide_id)
    if state is None or state["action"] != "finalise":
        return tr("review_open_state", session.language)
    return tr("review_finalised_state", session.language, reader=state["reader"],
              time=state["time"][:19].replace("T", " "))


def _info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)
