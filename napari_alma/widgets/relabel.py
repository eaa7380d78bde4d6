"""Show a new class on a few points of a large cells layer within one frame.

Reassigning a Points layer's features or colours makes napari rebuild every marker.
napari 0.9.2's vispy layer then turns each of the N symbols into a string and uploads all
N markers again, about 50 ms for 100,000 points on a 2-core EPYC. Here the changed points'
features, border colours and widths are written in place in the layer, and only their
markers are rewritten in the GPU buffer.

NOTE: the GPU patch reads private attributes of napari 0.9.2 (``layer_to_visual``,
``_view_indices``) and vispy 0.17 (``MarkersVisual._data`` and ``_vbo``). When they are
missing or do not match, the whole layer is refreshed instead: slower, never wrong.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Sequence

import numpy as np

from napari_alma.core.counting import Differential, count_differential
from napari_alma.widgets import points_style

logger = logging.getLogger(__name__)

# More changed points than this are shown by a plain full refresh of the layer.
MAX_PATCHED_POINTS = 256


def layer_rows(layer, cell_ids: Sequence[int]) -> np.ndarray:
    """Return the layer rows (point indices) of ``cell_ids``, in layer order."""
    ids = layer.features["cell_id"].to_numpy(int)
    return np.flatnonzero(np.isin(ids, np.asarray(cell_ids, dtype=int)))


def show_class(session, cell_ids: Sequence[int], code: str) -> None:
    """Show ``code`` as the reviewed class of ``cell_ids`` in the session's cells layer.

    The store must already hold the change: this only updates what the layer shows.
    """
    show_states(session, cell_ids, [code] * len(cell_ids), [True] * len(cell_ids))


def show_reviewed(session, cell_ids: Sequence[int]) -> None:
    """Show ``cell_ids`` as reviewed with the class they show now (a confirmation)."""
    layer = session.cells_layer
    rows = layer_rows(layer, cell_ids)
    ids = layer.features["cell_id"].to_numpy(int)[rows]
    classes = layer.features["class"].to_numpy(object)[rows]
    show_states(session, ids, classes, np.ones(len(rows), dtype=bool))


def show_stored(session, cell_ids: Sequence[int]) -> None:
    """Show the stored class and reviewed state of ``cell_ids``, read from the store."""
    from napari_alma.store.cell_state import cell_states

    states = cell_states(session.project, session.slide_id, cell_ids, session.reader)
    ids = list(states)
    show_states(session, ids, [states[c].shown for c in ids], [bool(states[c].label) for c in ids])


def show_states(session, cell_ids: Sequence[int], classes: Sequence[str],
                reviewed: Sequence[bool]) -> None:
    """Show each cell of ``cell_ids`` with its shown class and reviewed state, in place.

    Parameters
    ----------
    cell_ids : sequence of int
        Stored cells shown in the session's cells layer.
    classes : sequence of str
        The class each cell now counts as (the reader's label, else the prediction).
    reviewed : sequence of bool
        Whether the reader has labelled each cell.
    """
    layer = session.cells_layer
    order = np.argsort(np.asarray(cell_ids, dtype=int), kind="stable")
    cell_ids = np.asarray(cell_ids, dtype=int)[order]
    rows = layer_rows(layer, cell_ids)
    ids_at_rows = layer.features["cell_id"].to_numpy(int)[rows]
    if len(rows) == 0:
        return
    # Each row takes the state given for its cell id.
    picked = order[np.searchsorted(cell_ids, ids_at_rows)]
    classes = np.asarray(classes, dtype=object)[picked]
    reviewed = np.asarray(reviewed, dtype=bool)[picked]

    features = layer.features
    _tally_of(session).move(features, rows, classes, reviewed)
    features.iloc[rows, features.columns.get_loc("class")] = classes
    features.iloc[rows, features.columns.get_loc("reviewed")] = reviewed
    colors = points_style.class_colors(classes, session.scheme)
    widths = points_style.border_widths(reviewed)
    layer.border_color[rows] = colors
    layer.border_width[rows] = widths
    if len(rows) > MAX_PATCHED_POINTS or not _patch_markers(session, rows, colors, widths):
        layer.refresh()


def _patch_markers(session, rows: np.ndarray, colors: np.ndarray, widths: np.ndarray) -> bool:
    """Rewrite the changed points' markers in the GPU buffer; return False if impossible."""
    layer = session.cells_layer
    try:
        visual = session.viewer.window._qt_viewer.canvas.layer_to_visual[layer]
        markers = visual.node.points_markers
        data, buffer = markers._data, markers._vbo
        view_indices = np.asarray(layer._view_indices)
    except (AttributeError, KeyError, RuntimeError) as err:
        logger.debug("Full refresh of the cells layer: %s", err)
        return False
    if data is None or len(data) != len(view_indices) or not layer.border_width_is_relative:
        return False
    position = {int(row): i for i, row in enumerate(rows)}
    for marker in np.flatnonzero(np.isin(view_indices, rows)):
        i = position[int(view_indices[marker])]
        data["a_fg_color"][marker] = colors[i]
        data["a_edgewidth"][marker] = data["a_size"][marker] * widths[i]
        buffer.set_subdata(data[marker : marker + 1], offset=int(marker))
    markers.update()
    return True


def count_shown(session, **settings) -> Differential:
    """Count the cells the layer shows, as ``Project.count`` would, without reading the store.

    The layer's features hold each stored cell's effective class and whether the reader
    labelled it. Their tally is kept per session and updated by :func:`show_class`, and
    counted again only when napari replaced the features (cells added, deleted or the
    layer rebuilt). ``settings`` go to ``count_differential``.
    """
    if session.cells_layer is None:
        return session.project.count(session.slide_id, reader=session.reader,
                                     labelled_only=session.blind, **settings)
    tally = _tally_of(session)
    differential = count_differential(Counter(tally.counts), session.scheme,
                                      unreviewed=tally.unreviewed, **settings)
    differential.slide_id = session.slide_id
    return differential


class _Tally:
    """Cells per shown class, and unreviewed cells, of one features table."""

    def __init__(self, features):
        self.features = features
        self.length = len(features)
        stored = features[(features["cell_id"] >= 0) & (features["class"] != "")]
        self.counts = Counter(stored["class"].value_counts().to_dict())
        self.unreviewed = int((~features["reviewed"].to_numpy(bool)).sum())

    def matches(self, features) -> bool:
        return features is self.features and len(features) == self.length

    def move(self, features, rows: np.ndarray, classes: np.ndarray,
             reviewed: np.ndarray) -> None:
        """Count ``rows`` of ``features`` with new ``classes`` and ``reviewed`` states."""
        old_classes = features.iloc[rows, features.columns.get_loc("class")].to_numpy()
        for old in old_classes[old_classes != ""]:
            self.counts[old] -= 1
        for new in classes[classes != ""]:
            self.counts[new] += 1
        was_reviewed = features.iloc[rows, features.columns.get_loc("reviewed")].to_numpy(bool)
        self.unreviewed += int(was_reviewed.sum()) - int(np.asarray(reviewed).sum())


_TALLIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tally_of(session) -> _Tally:
    features = session.cells_layer.features
    tally = _TALLIES.get(session)
    if tally is None or not tally.matches(features):
        tally = _TALLIES[session] = _Tally(features)
    return tally
