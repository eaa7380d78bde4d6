"""The reader's own settings: class keys and display language, saved per operating-system user.

The settings live in ``settings.json`` in the user config folder that platformdirs gives
for "napari-alma" (``~/.config/napari-alma`` on Linux), or in ``$ALMA_CONFIG_DIR`` when set.
They apply to every project. A class without a saved key uses the scheme's key, so a new
class in the scheme gets its default key. The module uses no Qt, so it is tested without it.
"""

from __future__ import annotations

import json
import logging
import os
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from napari_alma.core.i18n import LANGUAGES, tr
from napari_alma.core.scheme import ClassScheme

logger = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
CONFIG_DIR_VARIABLE = "ALMA_CONFIG_DIR"
AUTO_LANGUAGE = "auto"
# A class key is one printable character: a letter, a digit or one of these marks.
KEY_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + ",.;'/[]-=")
# Keys a class may not take. In napari 0.9.2 the digits 1-7 switch the layer modes (on
# Points 2-4 are add, select and pan/zoom, which the review help promises), and "." and
# "," are the review queue's next and previous cell (widgets/desk.py).
RESERVED_KEYS = frozenset("1234567.,")


class SettingsError(ValueError):
    """Invalid key assignment: a conflict, a reserved key or a key that is not one character."""


@dataclass
class UserSettings:
    """The saved choices of one operating-system user.

    Attributes
    ----------
    keys : dict of str to str
        Class code -> key, only for the classes whose key differs from the scheme's.
    language : str
        "auto" (napari's language, else the system's), "en" or "es".
    """

    keys: dict[str, str] = field(default_factory=dict)
    language: str = AUTO_LANGUAGE


def config_folder() -> Path:
    """Return the folder of the settings file: ``$ALMA_CONFIG_DIR``, else the user config dir."""
    override = os.environ.get(CONFIG_DIR_VARIABLE)
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-alma", appauthor=False))


def settings_path() -> Path:
    """Return the path of the settings file (which may not exist yet)."""
    return config_folder() / SETTINGS_FILE


def load_settings() -> UserSettings:
    """Read the saved settings, or return the defaults when there is no file.

    A file that cannot be read or parsed is logged and ignored, so a damaged file never
    stops the review. Saving the settings again replaces it.
    """
    path = settings_path()
    if not path.is_file():
        return UserSettings()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        keys = {str(code): str(key).lower() for code, key in document.get("keys", {}).items()}
        language = str(document.get("language", AUTO_LANGUAGE))
    except (OSError, ValueError, AttributeError) as err:
        logger.warning("Ignoring the settings file %s, which could not be read: %s", path, err)
        return UserSettings()
    if language not in (AUTO_LANGUAGE, *LANGUAGES):
        logger.warning("Ignoring language %r in %s; expected auto, en or es.", language, path)
        language = AUTO_LANGUAGE
    return UserSettings(keys=keys, language=language)


def save_settings(settings: UserSettings) -> Path:
    """Write ``settings`` to the settings file through a temporary file; return its path."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"keys": dict(sorted(settings.keys.items())), "language": settings.language}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def class_keys(scheme: ClassScheme, settings: UserSettings | None = None) -> dict[str, str]:
    """Return class code -> key for every class: the saved key, else the scheme's.

    A saved assignment that is no longer valid (a reserved key, or two classes on one key
    after the scheme changed) is logged and the scheme's keys are used instead.
    """
    settings = settings if settings is not None else load_settings()
    keys = {cell_class.code: cell_class.key for cell_class in scheme.classes}
    keys.update({code: key for code, key in settings.keys.items() if code in keys})
    try:
        check_keys(keys, "en")
    except SettingsError as err:
        logger.warning("Using the scheme's class keys, because the saved ones are invalid: %s", err)
        return {cell_class.code: cell_class.key for cell_class in scheme.classes}
    return keys


def check_keys(keys: dict[str, str], language: str) -> None:
    """Raise SettingsError unless every class has its own valid, unreserved key.

    Parameters
    ----------
    keys : dict of str to str
        Class code -> key.
    language : str
        The language of the error message.
    """
    owners: dict[str, str] = {}
    for code, key in keys.items():
        if len(key) != 1 or key not in KEY_CHARACTERS:
            raise SettingsError(tr("keys_invalid", language, code=code, shortcut=key))
        if key in RESERVED_KEYS:
            raise SettingsError(tr("keys_reserved", language, code=code, shortcut=key))
        if key in owners:
            raise SettingsError(tr("keys_conflict", language, shortcut=key, first=owners[key],
                                   second=code))
        owners[key] = code


def keys_to_save(keys: dict[str, str], scheme: ClassScheme) -> dict[str, str]:
    """Return the entries of ``keys`` that differ from the scheme's default keys."""
    return {code: key for code, key in keys.items()
            if code in scheme and scheme[code].key != key}


def language_override(settings: UserSettings | None = None) -> str | None:
    """Return the saved language ("en" or "es"), or None when it follows napari or the system."""
    settings = settings if settings is not None else load_settings()
    return None if settings.language == AUTO_LANGUAGE else settings.language
