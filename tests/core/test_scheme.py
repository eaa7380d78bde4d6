import pytest

from napari_alma.core.scheme import SchemeError, default_scheme, load_scheme


def test_bone_marrow_scheme_roles():
    scheme = default_scheme()
    assert len(scheme.codes) == 26
    assert scheme["BLA"].blast == "yes"
    assert scheme["BLA"].lineage == "myeloid"
    assert scheme["EBO"].lineage == "erythroid"
    assert not scheme["MGK"].counted
    assert scheme["PLM"].es == "célula plasmática"
    assert scheme.by_key("b").code == "BLA"


def test_scheme_keys_and_colours_unique():
    scheme = default_scheme()
    assert len({c.key for c in scheme.classes}) == len(scheme.classes)
    assert len({c.color for c in scheme.classes}) == len(scheme.classes)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{code: AAA, en: a, es: a, color: '#000000', key: a, counted: true, lineage: x, "
         "blast: 'no'}", "lineage"),
        ("{code: AAA, en: a, color: '#000000', key: a, counted: true, lineage: other, "
         "blast: 'no'}", "lacks es"),
    ],
)
def test_invalid_scheme_named(tmp_path, entry, message):
    path = tmp_path / "custom.yaml"
    path.write_text(f"name: custom\nclasses:\n  - {entry}\n", encoding="utf-8")
    with pytest.raises(SchemeError, match=message):
        load_scheme(path)


def test_duplicate_key_rejected(tmp_path):
    row = ("{code: %s, en: a, es: a, color: '#00000%d', key: a, counted: true, "
           "lineage: other, blast: 'no'}")
    path = tmp_path / "dup.yaml"
    path.write_text(f"classes:\n  - {row % ('AAA', 1)}\n  - {row % ('BBB', 2)}\n", encoding="utf-8")
    with pytest.raises(SchemeError, match="key 'a' is used by both AAA and BBB"):
        load_scheme(path)


def test_model_class_outside_scheme_named():
    with pytest.raises(SchemeError, match="LYA"):
        default_scheme().check_model_classes(["BLA", "LYA"], "model X")
