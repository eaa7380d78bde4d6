"""Pass class keys from a dock's drop-down lists on to napari's key bindings.

A focused ``QComboBox`` takes a typed letter for itself (it jumps to the entry starting
with that letter), so a class key pressed after choosing the count target would be lost.
The filter here sends such a key to the list's parent instead. From there Qt passes it up
to napari's dock wrapper, which hands unused keys to the viewer's key bindings. Editable
lists and spin boxes, where the reader types text, keep their keys.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtGui import QKeyEvent
from qtpy.QtWidgets import QApplication, QComboBox

from napari_alma.widgets import user_settings


class _ClassKeyFilter(QObject):
    def __init__(self, scheme, parent=None):
        super().__init__(parent)
        self.scheme = scheme

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 -- Qt's name
        if event.type() != QEvent.Type.KeyPress or not _is_class_key(event, self.scheme):
            return False
        if isinstance(watched, QComboBox) and watched.isEditable():
            return False
        parent = watched.parentWidget()
        if parent is None:
            return False
        copy = QKeyEvent(event.type(), event.key(), event.modifiers(), event.text())
        QApplication.sendEvent(parent, copy)
        return True


def _is_class_key(event, scheme) -> bool:
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    if modifiers != Qt.KeyboardModifier.NoModifier:
        return False
    return event.text().lower() in set(user_settings.class_keys(scheme).values())


def pass_class_keys_through(widget, scheme) -> None:
    """Send class keys typed in ``widget``'s non-editable drop-down lists onward.

    Parameters
    ----------
    widget : QWidget
        A dock's widget; every ``QComboBox`` inside it gets the filter.
    scheme : ClassScheme
        The classes whose keys (the reader's saved ones, else the scheme's) pass through.
    """
    key_filter = _ClassKeyFilter(scheme, widget)
    for box in widget.findChildren(QComboBox):
        box.installEventFilter(key_filter)
