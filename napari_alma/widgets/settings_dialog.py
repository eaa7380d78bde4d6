"""The reader's settings dialog: one key per class and the display language."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_alma.core.i18n import tr
from napari_alma.core.scheme import ClassScheme
from napari_alma.widgets import user_settings
from napari_alma.widgets.user_settings import AUTO_LANGUAGE, SettingsError, UserSettings

KEY_COLUMN = 2
LANGUAGE_CHOICES = (AUTO_LANGUAGE, "en", "es")


class SettingsDialog(QDialog):
    """Dialog that edits and saves the class keys and the language override.

    Parameters
    ----------
    scheme : ClassScheme
        The classes listed, with their scheme keys as defaults.
    language : str
        The language of the dialog.
    parent : QWidget, optional
        The widget the dialog is centred on.
    """

    def __init__(self, scheme: ClassScheme, language: str, parent=None):
        super().__init__(parent)
        self.scheme = scheme
        self.language = language
        self.saved: UserSettings | None = None
        self.setWindowTitle(tr("settings_title", language))
        settings = user_settings.load_settings()

        self.table = self._make_table(user_settings.class_keys(scheme, settings))
        self.language_box = self._make_language_box(settings.language)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff6060;")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.button(QDialogButtonBox.StandardButton.Save).setText(tr("settings_save", language))
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("cancel", language))
        defaults = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        defaults.setText(tr("settings_defaults", language))
        defaults.clicked.connect(self.restore_defaults)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("settings_keys_help", language)))
        layout.addWidget(self.table)
        language_row = QHBoxLayout()
        language_row.addWidget(QLabel(tr("settings_language", language)))
        language_row.addWidget(self.language_box)
        layout.addLayout(language_row)
        layout.addWidget(QLabel(tr("settings_language_help", language)))
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(420, 640)

    def _make_table(self, keys: dict[str, str]) -> QTableWidget:
        table = QTableWidget(len(self.scheme.classes), 3)
        table.setHorizontalHeaderLabels(
            [tr("settings_code", self.language), tr("class", self.language),
             tr("settings_key", self.language)]
        )
        table.verticalHeader().setVisible(False)
        for row, cell_class in enumerate(self.scheme.classes):
            for column, text in enumerate((cell_class.code, cell_class.name(self.language))):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                table.setItem(row, column, item)
            table.setItem(row, KEY_COLUMN, QTableWidgetItem(keys[cell_class.code]))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        return table

    def _make_language_box(self, current: str) -> QComboBox:
        box = QComboBox()
        for choice in LANGUAGE_CHOICES:
            box.addItem(tr(f"settings_language_{choice}", self.language), choice)
        box.setCurrentIndex(LANGUAGE_CHOICES.index(current))
        return box

    def keys(self) -> dict[str, str]:
        """Return class code -> key as typed in the table (lower case, spaces removed)."""
        return {
            cell_class.code: self.table.item(row, KEY_COLUMN).text().strip().lower()
            for row, cell_class in enumerate(self.scheme.classes)
        }

    def set_key(self, code: str, key: str) -> None:
        """Type ``key`` in the row of class ``code``."""
        self.table.item(self.scheme.codes.index(code), KEY_COLUMN).setText(key)

    def set_language(self, choice: str) -> None:
        """Choose "auto", "en" or "es" in the language list."""
        self.language_box.setCurrentIndex(LANGUAGE_CHOICES.index(choice))

    def restore_defaults(self) -> None:
        """Put the scheme's keys back in the table (saved only with Save)."""
        for cell_class in self.scheme.classes:
            self.set_key(cell_class.code, cell_class.key)
        self.error.setText("")

    def save(self) -> bool:
        """Check and save the settings, then close; on a conflict show why and stay open."""
        keys = self.keys()
        try:
            user_settings.check_keys(keys, self.language)
        except SettingsError as err:
            self.error.setText(str(err))
            return False
        self.saved = UserSettings(keys=user_settings.keys_to_save(keys, self.scheme),
                                  language=self.language_box.currentData())
        user_settings.save_settings(self.saved)
        self.accept()
        return True


def open_settings(viewer, language: str, parent=None) -> UserSettings | None:
    """Show the settings dialog; once saved, apply the keys to the viewer's review.

    Returns the saved settings, or None when the reader cancelled.
    """
    from napari_alma.core.scheme import default_scheme
    from napari_alma.widgets.session import get_session

    session = get_session(viewer)
    dialog = SettingsDialog(session.scheme if session else default_scheme(), language, parent)
    dialog.exec_()
    if dialog.saved is not None:
        apply_settings(viewer, dialog.saved, language)
    return dialog.saved


def apply_settings(viewer, saved: UserSettings, language: str) -> None:
    """Bind the saved keys, relabel the docks, and tell when a new language takes effect."""
    from napari.utils.notifications import show_info

    from napari_alma.widgets import keys
    from napari_alma.widgets.session import get_session

    session = get_session(viewer)
    if session is not None:
        keys.bind_review_keys(session)
        for dock in session.docks.values():
            if hasattr(dock, "update_keys"):
                dock.update_keys()
    chosen = user_settings.language_override(saved)
    if chosen is not None and chosen != language:
        show_info(tr("settings_language_reopen", chosen))
