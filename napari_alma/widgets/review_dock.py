"""The review dock: reader, blind second read, class buttons, add, delete, mark-reviewed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, Container, Label, LineEdit, PushButton

from napari_alma.core.i18n import tr
from napari_alma.core.scheme import CellClass, default_scheme
from napari_alma.store.project import default_reader
from napari_alma.store.second_read import is_reading_blind
from napari_alma.widgets import keys, user_settings
from napari_alma.widgets.dock import DOCK_MAX_WIDTH, SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

BUTTONS_PER_ROW = 2
# Pixels between class buttons: 26 classes must fit on a laptop screen beside the count.
BUTTON_SPACING = 2
# Pixels of padding around a label inside the dock.
LABEL_MARGIN = 12


def class_button_text(cell_class: CellClass, language: str, key: str | None = None) -> str:
    """Return a class button's text: its key and its name, e.g. "[b] blast".

    ``key`` is the reader's key for the class; by default the scheme's.
    """
    return f"[{key or cell_class.key}] {cell_class.name(language)}"


def text_color_for(background: str) -> str:
    """Return black or white, whichever reads better on the ``#rrggbb`` background."""
    red, green, blue = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return "#000000" if luminance > 140 else "#ffffff"


class ReviewDock(SessionDock):
    """Dock that stores the reader's corrections of the selected cells.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session the buttons act on.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "dock_review")
        session = get_session(viewer)
        self.scheme = session.scheme if session else default_scheme()

        self.reader = LineEdit(
            value=session.reader if session else default_reader(),
            label=tr("reader", self.language),
        )
        self.reader.changed.connect(self._set_reader)
        self.blind = CheckBox(value=bool(session and session.blind),
                              text=tr("second_blind_toggle", self.language))
        self.blind.tooltip = tr("second_blind_tooltip", self.language)
        self.blind.changed.connect(self._set_blind)
        self.class_buttons = self._make_class_buttons()
        self.add_button = self._action_button("add_cell", keys.add_cell_at_cursor)
        self.delete_button = self._action_button("delete_cells", keys.delete_selected)
        self.review_button = self._action_button("mark_reviewed", keys.mark_reviewed)
        self.settings_button = PushButton(text=tr("settings_open", self.language))
        self.settings_button.tooltip = tr("settings_open_tooltip", self.language)
        self.settings_button.changed.connect(self.open_settings)
        self.keys_help = Label(value=tr("review_keys_help", self.language))
        self.keys_help.native.setWordWrap(True)
        _reserve_wrapped_height(self.keys_help.native)
        self.extend([
            Container(widgets=[self.reader]),
            self.blind,
            Label(value=tr("apply_class", self.language)),
            *self._rows(list(self.class_buttons.values())),
            self.add_button, self.delete_button, self.review_button,
            self.keys_help, self.settings_button,
        ])
        self.native.layout().setSpacing(BUTTON_SPACING)
        if session is not None:
            keys.bind_review_keys(session)
        on_session(viewer, self._attach)

    def _make_class_buttons(self) -> dict[str, PushButton]:
        buttons = {}
        class_keys = user_settings.class_keys(self.scheme)
        for cell_class in self.scheme.classes:
            button = PushButton(text=class_button_text(cell_class, self.language,
                                                       class_keys[cell_class.code]))
            button.native.setStyleSheet(
                f"background-color: {cell_class.color}; "
                f"color: {text_color_for(cell_class.color)};"
            )
            button.tooltip = f"{cell_class.code}: {cell_class.name(self.language)}"
            button.changed.connect(self._apply_callback(cell_class.code))
            buttons[cell_class.code] = button
        return buttons

    def update_keys(self) -> None:
        """Show the reader's current class keys on the class buttons."""
        class_keys = user_settings.class_keys(self.scheme)
        for code, button in self.class_buttons.items():
            button.text = class_button_text(self.scheme[code], self.language, class_keys[code])

    def open_settings(self, *_args) -> None:
        """Open the dialog that sets the class keys and the language."""
        from napari_alma.widgets.settings_dialog import open_settings

        open_settings(self.viewer, self.language, self.native)

    def _rows(self, buttons: list[PushButton]) -> list[Container]:
        rows = []
        for i in range(0, len(buttons), BUTTONS_PER_ROW):
            row = Container(widgets=buttons[i : i + BUTTONS_PER_ROW], layout="horizontal",
                            labels=False)
            row.margins = (0, 0, 0, 0)
            row.native.layout().setSpacing(BUTTON_SPACING)
            rows.append(row)
        return rows

    def _action_button(self, text_key: str, action) -> PushButton:
        button = PushButton(text=tr(text_key, self.language))
        button.changed.connect(lambda: self._run(action))
        return button

    def _apply_callback(self, code: str):
        return lambda: self._run(keys.apply_class, code)

    def _run(self, action, *args):
        session = get_session(self.viewer)
        if session is None:
            from napari.utils.notifications import show_info

            show_info(tr("no_session", self.language))
            return None
        return keys.run_action(session, action, session, *args)

    def _set_reader(self, value: str) -> None:
        session = get_session(self.viewer)
        if session is not None:
            session.reader = value.strip() or default_reader()
            # NOTE: a blind read stays blind while the name is edited, because each
            # keystroke passes through a partial name. An open blind read stored for the new
            # name also turns it on. Only the check box ends a blind read.
            session.blind = session.blind or is_reading_blind(
                session.project, session.slide_id, session.reader)
            self._show_blind(session.blind)
            # The layer and the count show the labels of the reader at the keyboard.
            session.refresh()

    def _set_blind(self, blind: bool) -> None:
        session = get_session(self.viewer)
        if session is None or session.blind == blind:
            return
        from napari.utils.notifications import show_info

        keys.run_action(session, session.set_blind, blind)
        if session.blind != blind:  # rejected, e.g. the primary reader cannot read blind
            self._show_blind(session.blind)
            return
        key = "second_blind_started" if blind else "second_blind_ended"
        show_info(tr(key, self.language, reader=session.reader))

    def _show_blind(self, blind: bool) -> None:
        with self.blind.changed.blocked():
            self.blind.value = blind

    def _attach(self, session) -> None:
        self.reader.value = session.reader
        self._show_blind(session.blind)
        keys.bind_review_keys(session)


def _reserve_wrapped_height(label) -> None:
    """Give a word-wrapped QLabel the height of its text wrapped at the dock's width.

    NOTE: Qt sizes a wrapped label for a guessed width, so in a narrow dock the last
    lines were clipped. The dock's maximum width bounds the real width.
    """
    from qtpy.QtCore import QRect, Qt

    width = DOCK_MAX_WIDTH - 2 * LABEL_MARGIN
    bounds = label.fontMetrics().boundingRect(
        QRect(0, 0, width, 10_000), Qt.TextFlag.TextWordWrap, label.text()
    )
    label.setMinimumHeight(bounds.height() + LABEL_MARGIN)
