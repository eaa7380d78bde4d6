"""Saved class keys and language: the settings file, the dialog and the bound keys."""

import json

import pytest
from qtpy.QtCore import Qt

from napari_alma.core.scheme import default_scheme
from napari_alma.widgets import user_settings
from napari_alma.widgets.user_settings import SettingsError, UserSettings

SCHEME = default_scheme()


def test_defaults_are_scheme_keys():
    keys = user_settings.class_keys(SCHEME)
    assert keys == {c.code: c.key for c in SCHEME.classes}
    assert keys["NIF"] == "n"


def test_settings_round_trip(user_config_folder):
    saved = UserSettings(keys={"BLA": "9", "NIF": "0"}, language="es")
    path = user_settings.save_settings(saved)
    assert path == user_config_folder / "settings.json"
    assert user_settings.load_settings() == saved
    keys = user_settings.class_keys(SCHEME)
    assert keys["BLA"] == "9"
    assert keys["NIF"] == "0"
    assert keys["LYT"] == "l"


def test_save_leaves_no_temporary_file(user_config_folder):
    user_settings.save_settings(UserSettings(language="en"))
    assert [p.name for p in user_config_folder.iterdir()] == ["settings.json"]


def test_conflict_rejected():
    keys = user_settings.class_keys(SCHEME) | {"BLA": "l"}
    with pytest.raises(SettingsError, match='"l" is set for both BLA and LYT'):
        user_settings.check_keys(keys, "en")


def test_reserved_key_rejected():
    keys = user_settings.class_keys(SCHEME) | {"BLA": "3"}
    with pytest.raises(SettingsError, match="reserved"):
        user_settings.check_keys(keys, "en")


def test_long_key_rejected_in_spanish():
    keys = user_settings.class_keys(SCHEME) | {"BLA": "bb"}
    with pytest.raises(SettingsError, match="no es válida"):
        user_settings.check_keys(keys, "es")


def test_invalid_saved_keys_fall_back(user_config_folder):
    user_settings.save_settings(UserSettings(keys={"BLA": "l"}))
    assert user_settings.class_keys(SCHEME)["BLA"] == "b"


def test_damaged_file_ignored(user_config_folder):
    (user_config_folder / "settings.json").write_text("{not json", encoding="utf-8")
    assert user_settings.load_settings() == UserSettings()


def test_only_changed_keys_saved():
    keys = user_settings.class_keys(SCHEME) | {"BLA": "9"}
    assert user_settings.keys_to_save(keys, SCHEME) == {"BLA": "9"}


def test_language_override(monkeypatch):
    from napari_alma.widgets.session import viewer_language

    monkeypatch.delenv("ALMA_LANG", raising=False)
    user_settings.save_settings(UserSettings(language="es"))
    assert viewer_language() == "es"
    user_settings.save_settings(UserSettings(language="en"))
    assert viewer_language() == "en"


@pytest.mark.gui
def test_dialog_rejects_conflict(qtbot, user_config_folder):
    from napari_alma.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(SCHEME, "en")
    qtbot.addWidget(dialog)
    dialog.set_key("BLA", "s")
    assert not dialog.save()
    assert "NGS" in dialog.error.text()
    assert not (user_config_folder / "settings.json").exists()


@pytest.mark.gui
def test_dialog_saves_swap(qtbot, user_config_folder):
    from napari_alma.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(SCHEME, "es")
    qtbot.addWidget(dialog)
    dialog.set_key("BLA", "l")
    dialog.set_key("LYT", "B")
    dialog.set_language("es")
    assert dialog.save()
    document = json.loads((user_config_folder / "settings.json").read_text(encoding="utf-8"))
    assert document == {"keys": {"BLA": "l", "LYT": "b"}, "language": "es"}
    dialog = SettingsDialog(SCHEME, "es")
    qtbot.addWidget(dialog)
    assert dialog.keys()["BLA"] == "l"
    dialog.restore_defaults()
    assert dialog.keys()["BLA"] == "b"


def canvas_press(qtbot, session, key):
    qtbot.keyClick(session.viewer.window._qt_viewer.canvas.native, key)


def last_label(session):
    events = session.project.events(session.slide_id)
    return events["new_class"].iloc[-1] if len(events) else None


@pytest.mark.gui
def test_changed_key_is_bound(review, qtbot):
    from napari_alma.widgets.settings_dialog import apply_settings

    saved = UserSettings(keys={"BLA": "9", "NIF": "b"})
    user_settings.save_settings(saved)
    apply_settings(review.viewer, saved, "en")
    review.select_ids([int(review.cells_layer.features["cell_id"][0])])
    canvas_press(qtbot, review, Qt.Key.Key_9)
    assert last_label(review) == "BLA"
    canvas_press(qtbot, review, Qt.Key.Key_B)
    assert last_label(review) == "NIF"
    assert review.docks["review"].class_buttons["BLA"].text == "[9] blast"
    assert review.docks["review"].class_buttons["NIF"].text == "[b] not identifiable"


@pytest.mark.gui
def test_gallery_follows_changed_key(review, qtbot):
    from napari_alma.widgets.settings_dialog import apply_settings

    saved = UserSettings(keys={"BLA": "9", "NIF": "b"})
    user_settings.save_settings(saved)
    apply_settings(review.viewer, saved, "en")
    gallery = review.docks["gallery"]
    assert gallery.view.key_to_code["9"] == "BLA"
    assert gallery.groups.item(1).text().startswith("[9] blast")


@pytest.mark.gui
def test_class_key_wins_on_shapes_layer(review, qtbot):
    shapes = review.viewer.add_shapes(name="notes")
    review.viewer.layers.selection.active = shapes
    mode = shapes.mode
    review.select_ids([int(review.cells_layer.features["cell_id"][0])])
    # R is napari's rectangle tool on Shapes layers; here it means proerythroblast.
    canvas_press(qtbot, review, Qt.Key.Key_R)
    assert last_label(review) == "PEB"
    assert shapes.mode == mode


@pytest.mark.gui
def test_docks_built_in_saved_language(make_napari_viewer, monkeypatch):
    from napari_alma.widgets.count_dock import CountDock
    from napari_alma.widgets.gallery_dock import GalleryDock
    from napari_alma.widgets.review_dock import ReviewDock

    monkeypatch.delenv("ALMA_LANG", raising=False)
    user_settings.save_settings(UserSettings(language="es"))
    viewer = make_napari_viewer()
    assert ReviewDock(viewer).native.windowTitle() == "Revisar células"
    assert CountDock(viewer).native.windowTitle() == "Recuento diferencial"
    gallery = GalleryDock(viewer)
    assert gallery.native.windowTitle() == "Galería de células"
    assert gallery.not_reviewed.text() == "Solo sin revisar"


@pytest.mark.gui
def test_class_key_from_focused_dock(review, qtbot):
    review.select_ids([int(review.cells_layer.features["cell_id"][0])])
    button = review.docks["model"].predict_button.native
    qtbot.keyClick(button, Qt.Key.Key_L)
    assert last_label(review) == "LYT"


@pytest.mark.gui
def test_typing_reader_name_stores_nothing(review, qtbot):
    review.select_ids([int(review.cells_layer.features["cell_id"][0])])
    field = review.docks["review"].reader.native
    field.clear()
    qtbot.keyClicks(field, "bob")
    assert field.text() == "bob"
    assert last_label(review) is None


@pytest.mark.gui
def test_class_key_from_focused_list(review, qtbot):
    review.select_ids([int(review.cells_layer.features["cell_id"][0])])
    target = review.docks["count"].target
    qtbot.keyClick(target.native, Qt.Key.Key_L)
    assert last_label(review) == "LYT"
    assert target.value == 500


def test_queue_keys_reserved_for_classes():
    from napari_alma.widgets import desk, user_settings

    assert desk.NEXT_KEY in user_settings.RESERVED_KEYS
    assert desk.PREVIOUS_KEY in user_settings.RESERVED_KEYS
