"""Keyboard shortcuts of the review, bound on the viewer, the image layer and the cells layer.

napari looks a key up in the active layer's own keymap, then in the active layer's class
keymap, then in the viewer's keymaps. In napari 0.9.2 the Points class binds A, P, S, Z,
1-5, Delete and Backspace, and the Image class binds C, O, X, Y, Z, 1 and 2. A binding on
the viewer alone would lose to those, so the review keys are also bound on the image layer
and on the cells layer, whose own keymaps come first.

Keys (scheme letters come from the class scheme, one letter per class):

- a class letter: apply that class to the selected cells. This replaces, while the cells
  layer is active, napari's Points keys A (select all in view), P (add mode), S (select
  mode) and Z (pan/zoom mode); the digits 2, 3 and 4 and the layer-controls buttons
  still switch those modes.
- Shift+N: add a cell at the cursor position.
- Enter: mark the selected cells as reviewed (the reader confirms the shown class).
- Delete / Backspace: delete the selected cells. On the cells layer this is napari's own
  Points shortcut, whose removal the session stores through ``layer.events.data``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from napari_alma.core.i18n import tr
from napari_alma.store.project import StoreError

logger = logging.getLogger(__name__)

ADD_CELL_KEY = "Shift-N"
MARK_REVIEWED_KEY = "Enter"
DELETE_KEYS = ("Delete", "Backspace")


def review_actions(session) -> dict[str, Callable[[], None]]:
    """Return the review's key bindings: napari key name -> action without arguments."""
    actions = {
        cell_class.key.upper(): _apply_action(session, cell_class.code)
        for cell_class in session.scheme.classes
    }
    actions[ADD_CELL_KEY] = lambda: run_action(session, add_cell_at_cursor, session)
    actions[MARK_REVIEWED_KEY] = lambda: run_action(session, mark_reviewed, session)
    from napari_alma.widgets.desk import desk_actions

    actions.update(desk_actions(session))
    return actions


def bind_review_keys(session) -> None:
    """Bind the review keys on the viewer, the image layer and the cells layer."""
    actions = review_actions(session)
    delete = lambda: run_action(session, delete_selected, session)  # noqa: E731
    for key, action in actions.items():
        for provider in (session.viewer, session.image_layer, session.cells_layer):
            provider.bind_key(key, _ignore_provider(action), overwrite=True)
    # NOTE: the cells layer keeps napari's own Delete, whose removal reaches the store
    # through the layer's data event; here Delete covers the other layers.
    for key in DELETE_KEYS:
        for provider in (session.viewer, session.image_layer):
            provider.bind_key(key, _ignore_provider(delete), overwrite=True)


def run_action(session, action: Callable, *args):
    """Run a reader action; show a failed store write or an invalid input as an error."""
    try:
        return action(*args)
    except (StoreError, ValueError) as err:
        logger.error("Review action %s failed: %s", getattr(action, "__name__", action), err)
        from napari.utils.notifications import show_error

        show_error(str(err))
        return None


def apply_class(session, code: str) -> int:
    """Apply ``code`` to the selected cells and tell the reader how many were saved."""
    changed = session.apply_class(code)
    if not changed:
        _info(tr("no_selection", session.language))
        return 0
    name = session.scheme[code].name(session.language)
    _info(tr("saved", session.language, n=changed, name=name))
    return changed


def add_cell_at_cursor(session) -> int:
    """Add a cell at the viewer's cursor position; return its id."""
    cell_id = session.add_cell_at(session.viewer.cursor.position)
    _info(tr("added", session.language))
    return cell_id


def delete_selected(session) -> int:
    """Delete the selected cells; return how many."""
    deleted = session.delete_selected()
    _info(tr("deleted", session.language, n=deleted) if deleted else
          tr("no_selection", session.language))
    return deleted


def mark_reviewed(session) -> int:
    """Mark the selected cells as reviewed; return how many."""
    reviewed = session.mark_reviewed_selected()
    _info(tr("reviewed", session.language, n=reviewed) if reviewed else
          tr("no_selection", session.language))
    return reviewed


def _apply_action(session, code: str) -> Callable[[], None]:
    return lambda: run_action(session, apply_class, session, code)


def _ignore_provider(action: Callable[[], None]) -> Callable:
    """Wrap ``action`` for napari, which calls a key binding with the viewer or layer."""

    def binding(_provider):
        action()

    return binding


def _info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)
