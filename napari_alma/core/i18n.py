"""User-facing text in English and Spanish.

The language is, in order: the ``lang`` argument, the ``ALMA_LANG`` environment variable,
napari's ``application.language`` setting (read by the widgets and passed in), then the
system locale. Anything else than Spanish falls back to English.
"""

from __future__ import annotations

import functools
import locale
import os
from pathlib import Path

import yaml

LANGUAGES = ("en", "es")

LOCALE_FOLDER = Path(__file__).parent / "locale"


class CatalogError(ValueError):
    """A message catalogue under ``napari_alma/core/locale`` is malformed."""


PLURAL_FORMS = ("one", "other")


@functools.cache
def messages() -> dict[str, dict]:
    """Return every user-facing text, key -> {language: text}, from the locale folder.

    Each feature keeps its texts in its own YAML file, so that a key is defined once and
    translators edit data, not code. A key defined twice, or missing a language, is an error.

    A text that counts something names the counting value under ``plural`` and gives each
    language a ``one`` and an ``other`` form; English and Spanish both use "one" for
    exactly 1. Such an entry is returned with its ``plural`` key beside the languages.
    """
    catalog: dict[str, dict] = {}
    origin: dict[str, str] = {}
    for path in sorted(LOCALE_FOLDER.glob("*.yaml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(entries, dict):
            raise CatalogError(
                f"{path}: invalid catalogue, expected a mapping of message keys, "
                f"got {type(entries).__name__}. Fix the file's YAML."
            )
        for key, texts in entries.items():
            if key in catalog:
                raise CatalogError(
                    f"{path}: message {key!r} is already defined in {origin[key]}. "
                    "Keep one definition."
                )
            catalog[key] = _entry(path, key, texts or {})
            origin[key] = path.name
    return catalog


def _entry(path: Path, key: str, texts: dict) -> dict:
    """Check one catalogue entry and return it as {language: text} (plus ``plural``)."""
    plural = texts.get("plural")

    def valid(text) -> bool:
        if plural is None:
            return isinstance(text, str)
        return isinstance(text, dict) and all(isinstance(text.get(f), str) for f in PLURAL_FORMS)

    missing = [lang for lang in LANGUAGES if not valid(texts.get(lang))]
    if missing:
        forms = " with 'one' and 'other' forms" if plural is not None else ""
        raise CatalogError(
            f"{path}: message {key!r} is missing its {', '.join(missing)} text{forms}. "
            "Add the translation."
        )
    entry = {lang: texts[lang] for lang in LANGUAGES}
    if plural is not None:
        entry["plural"] = str(plural)
    return entry


def get_language(lang: str | None = None) -> str:
    """Return "en" or "es": ``lang`` if given, else ``ALMA_LANG``, else the system locale."""
    # The system locale is read last and only when needed: it costs a locale lookup.
    candidate = lang or os.environ.get("ALMA_LANG") or _system_language()
    if candidate:
        code = candidate.lower()[:2]
        return code if code in LANGUAGES else "en"
    return "en"


def tr(key: str, lang: str | None = None, **values: object) -> str:
    """Return message ``key`` in the user's language, formatted with ``values``."""
    try:
        texts = messages()[key]
    except KeyError as err:
        raise KeyError(f"No user-facing text named {key!r} in {LOCALE_FOLDER}") from err
    text = texts[get_language(lang)]
    if "plural" in texts:
        text = text["one" if values[texts["plural"]] == 1 else "other"]
    return text.format(**values)


def _system_language() -> str | None:
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value and value not in ("C", "POSIX", "C.UTF-8"):
            return value
    language, _ = locale.getlocale()
    return language
