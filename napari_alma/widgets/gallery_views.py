"""The gallery's Qt views: the grid of crops, the class group list and the crop painter."""

from __future__ import annotations

from qtpy.QtCore import QRect, QSize, Qt, Signal
from qtpy.QtGui import QColor, QKeySequence, QPen
from qtpy.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QStyle,
    QStyledItemDelegate,
)

from napari_alma.core.scheme import ClassScheme, default_scheme
from napari_alma.widgets.gallery_model import (
    CLASS_ROLE,
    REVIEWED_ROLE,
    cell_ids_from_mime,
)
from napari_alma.widgets.review_dock import text_color_for

CROP_PX = 72
# Pixels around a crop: its frame, and a strip below it with the class code.
FRAME_PX = 3
STRIP_PX = 14
ITEM_SIZE = QSize(CROP_PX + 2 * FRAME_PX + 4, CROP_PX + 2 * FRAME_PX + STRIP_PX + 4)
NAVIGATION_KEYS = frozenset({
    Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End,
})


class GalleryView(QListView):
    """Wrapping grid of crops whose class keys and Enter act on the selected crops.

    Keys the gallery does not use (e.g. napari's layer-mode digits) are passed on to the
    dock, whose napari wrapper hands them to the viewer's key bindings.
    """

    class_key_pressed = Signal(str)
    review_key_pressed = Signal()

    def __init__(self):
        super().__init__()
        self.key_to_code: dict[str, str] = {}
        # NOTE: list mode wrapping left to right looks like icon mode, but lays out
        # uniform items by arithmetic, while icon mode places each of 10,000 items.
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setSpacing(0)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # NOTE: setMovement(Static) turned dragging off; the drop lands on the model.
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)

    def keyPressEvent(self, event) -> None:  # noqa: N802 -- Qt's name
        """Handle class keys, Enter and navigation; pass any other key on."""
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        text = event.text().lower()
        if modifiers == Qt.KeyboardModifier.NoModifier and text in self.key_to_code:
            self.class_key_pressed.emit(self.key_to_code[text])
            event.accept()
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.review_key_pressed.emit()
            event.accept()
        elif event.key() in NAVIGATION_KEYS or event.matches(QKeySequence.StandardKey.SelectAll):
            super().keyPressEvent(event)
        else:
            event.ignore()


class GroupList(QListWidget):
    """The class groups with their counts; crops dropped on a class move to it."""

    cells_dropped = Signal(list, str)

    def __init__(self):
        super().__init__()
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 -- Qt's name
        """Accept gallery crops only."""
        if cell_ids_from_mime(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 -- Qt's name
        """Accept gallery crops over a class row (not over "all classes")."""
        item = self.itemAt(_event_pos(event))
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802 -- Qt's name
        """Move the dropped cells to the class of the row under the cursor."""
        item = self.itemAt(_event_pos(event))
        cell_ids = cell_ids_from_mime(event.mimeData())
        if item is None or not item.data(Qt.ItemDataRole.UserRole) or not cell_ids:
            event.ignore()
            return
        event.acceptProposedAction()
        self.cells_dropped.emit(cell_ids, item.data(Qt.ItemDataRole.UserRole))


def _event_pos(event):
    """Return a drag event's position as a QPoint (Qt 6 has ``position``, Qt 5 ``pos``)."""
    if hasattr(event, "position"):
        return event.position().toPoint()
    return event.pos()


class CropDelegate(QStyledItemDelegate):
    """Paints a crop framed in its class colour (thick once reviewed) over its class code."""

    def __init__(self, parent, scheme: ClassScheme | None = None):
        super().__init__(parent)
        self.scheme = scheme or default_scheme()

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 -- Qt's name
        """Return the fixed size of every gallery item."""
        return ITEM_SIZE

    def paint(self, painter, option, index) -> None:
        """Draw the crop, its class frame and strip, and the selection highlight."""
        code = index.data(CLASS_ROLE) or ""
        color = QColor(self.scheme[code].color if code in self.scheme else "#808080")
        box = QRect(option.rect.x() + 2, option.rect.y() + 2,
                    CROP_PX + 2 * FRAME_PX, CROP_PX + 2 * FRAME_PX)
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        painter.fillRect(box, color if index.data(REVIEWED_ROLE) else QColor("#202020"))
        inner = box.adjusted(FRAME_PX, FRAME_PX, -FRAME_PX, -FRAME_PX)
        if not index.data(REVIEWED_ROLE):
            painter.setPen(QPen(color, 1))
            painter.drawRect(box.adjusted(0, 0, -1, -1))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None:
            painter.drawPixmap(inner, pixmap)
        else:
            painter.fillRect(inner, QColor("#404040"))
        strip = QRect(box.x(), box.bottom() + 1, box.width(), STRIP_PX)
        painter.fillRect(strip, color)
        painter.setPen(QColor(text_color_for(color.name())))
        painter.drawText(strip, Qt.AlignmentFlag.AlignCenter, code)
        painter.restore()
