"""The message catalogues: every text in both languages, each key defined once."""

import string

import pytest

from napari_alma.core import i18n


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _forms(text) -> list[str]:
    return list(text.values()) if isinstance(text, dict) else [text]


def test_messages_match_across_languages():
    catalog = i18n.messages()
    assert len(catalog) > 50
    for key, texts in catalog.items():
        fields = _fields(_forms(texts["en"])[-1])
        for text in _forms(texts["en"]) + _forms(texts["es"]):
            assert text.strip(), key
            assert _fields(text) == fields, key


def test_plural_form_follows_count():
    assert i18n.tr("unreviewed", "en", n=1) == "Not reviewed yet: 1 cell"
    assert i18n.tr("unreviewed", "en", n=2) == "Not reviewed yet: 2 cells"
    assert i18n.tr("unreviewed", "es", n=1) == "Sin revisar: 1 célula"
    assert i18n.tr("unreviewed", "es", n=0) == "Sin revisar: 0 células"


def test_tr_fills_values():
    assert i18n.tr("total_counted", "es", total=12, target=500) == "Contadas: 12 de 500 células"
    assert i18n.tr("total_counted", "en", total=12, target=500) == "Counted: 12 of 500 cells"


def test_unknown_language_uses_english(monkeypatch):
    monkeypatch.setenv("ALMA_LANG", "fr_FR.UTF-8")
    assert i18n.get_language() == "en"


def test_unknown_key_names_folder():
    with pytest.raises(KeyError, match="locale"):
        i18n.tr("no_such_message")


@pytest.fixture
def catalogue_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(i18n, "LOCALE_FOLDER", tmp_path)
    i18n.messages.cache_clear()
    yield tmp_path
    i18n.messages.cache_clear()


def test_duplicate_key_rejected(catalogue_folder):
    (catalogue_folder / "a.yaml").write_text("hello: {en: Hello, es: Hola}\n", encoding="utf-8")
    (catalogue_folder / "b.yaml").write_text("hello: {en: Hi, es: Hola}\n", encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match="already defined in a.yaml"):
        i18n.messages()


def test_plural_without_forms_rejected(catalogue_folder):
    (catalogue_folder / "a.yaml").write_text(
        "cells:\n  plural: n\n  en: {one: '{n} cell', other: '{n} cells'}\n  es: '{n} células'\n",
        encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match="missing its es text with 'one' and 'other'"):
        i18n.messages()


def test_missing_spanish_rejected(catalogue_folder):
    (catalogue_folder / "a.yaml").write_text("hello: {en: Hello}\n", encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match="missing its es text"):
        i18n.messages()
