"""Keyboard shortcuts of the review, bound on the viewer and on every layer of the viewer.

napari looks a key up in the active layer's own keymap, then in the active layer's class
keymap, then in the viewer's keymaps. In napari 0.9.2 the Points class binds A, P, S, Z,
1-5, Delete and Backspace, and the Image class binds C, O, X, Y, Z, 1 and 2. A binding on
the viewer alone would lose to those, so the review keys are also bound on each layer
(the image, the cells and any layer added later), whose own keymaps come first. A key
pressed in a dock that the dock's widgets do not use reaches the same keymaps, because
napari's dock widgets pass such keys to the viewer.

Keys (one per class: the reader's saved key, else the class scheme's):

- a class key: apply that class to the selected cells. This replaces, while the cells
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
import weakref
from collections.abc import Callable

from napari_alma.core.i18n import tr
from napari_alma.store.project import StoreError
from napari_alma.widgets import user_settings

logger = logging.getLogger(__name__)

ADD_CELL_KEY = "Shift-N"
MARK_REVIEWED_KEY = "Enter"
DELETE_KEYS = ("Delete", "Backspace")


# The keys bound for each session, so that binding again first removes the old ones.
_BOUND_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def review_actions(session) -> dict[str, Callable[[], None]]:
    """Return the review's key bindings: napari key name -> action without arguments."""
    actions = {
        key.upper(): _apply_action(session, code)
        for code, key in user_settings.class_keys(session.scheme).items()
    }
    actions[ADD_CELL_KEY] = lambda: run_action(session, add_cell_at_cursor, session)
    actions[MARK_REVIEWED_KEY] = lambda: run_action(session, mark_reviewed, session)
    from napari_alma.widgets.desk import desk_actions

    actions.update(desk_actions(session))
    return actions


def bind_review_keys(session) -> None:
    """Bind the review keys on the viewer and every layer, replacing earlier bindings.

    Call it again after the reader changes the class keys. Layers added to the viewer
    later get the keys when they are inserted.
    """
    first_time = session not in _BOUND_KEYS
    for provider in (session.viewer, *session.viewer.layers):
        _unbind(provider, _BOUND_KEYS.get(session, ()))
    actions = review_actions(session)
    _BOUND_KEYS[session] = (*actions, *DELETE_KEYS)
    for provider in (session.viewer, *session.viewer.layers):
        _bind_on(session, provider, actions)
    if first_time:
        session.viewer.layers.events.inserted.connect(
            lambda event: _bind_on(session, event.value, review_actions(session))
        )


def _bind_on(session, provider, actions: dict[str, Callable[[], None]]) -> None:
    for key, action in actions.items():
        provider.bind_key(key, _ignore_provider(action), overwrite=True)
    # NOTE: the cells layer and any other non-image layer keep napari's own Delete: on
    # the cells layer its removal reaches the store through the layer's data event.
    if provider is session.viewer or provider is session.image_layer:
        delete = lambda: run_action(session, delete_selected, session)  # noqa: E731
        for key in DELETE_KEYS:
            provider.bind_key(key, _ignore_provider(delete), overwrite=True)


def _unbind(provider, keys) -> None:
    for key in keys:
        provider.bind_key(key, None)


def run_action(session, action: Callable, *args):
    """Run a reader action; show a failed store write or an invalid input as an error."""
    try:
        return action(*args)
    except (StoreError, ValueError) as err:
        logger.error("Review action %s failed: %s", getattr(action, "__name__", action), err)
        from napari.utils.notifications import show_error

        # Store errors are written in English for the log; the reader gets them with a
        # translated lead. ValueErrors from the session are translated already.
        message = tr("store_failed", session.language, error=err) if isinstance(
            err, StoreError) else str(err)
        show_error(message)
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
