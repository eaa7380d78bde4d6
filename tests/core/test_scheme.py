import json
from pathlib import Path

import pytest

import napari_alma
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


def write_scheme(tmp_path, rows, header="name: custom\n"):
    path = tmp_path / "custom.yaml"
    path.write_text(header + "classes:\n" + "".join(f"  - {row}\n" for row in rows),
                    encoding="utf-8")
    return path


def class_row(code, key, color, extra=""):
    return (f"{{code: {code}, en: {code.lower()}, es: {code.lower()}, color: '{color}', "
            f"key: {key}, counted: true, lineage: other, blast: 'no'{extra}}}")


def test_duplicate_code_rejected(tmp_path):
    path = write_scheme(tmp_path, [class_row("AAA", "a", "#000001"),
                                   class_row("AAA", "b", "#000002")])
    with pytest.raises(SchemeError, match="code 'AAA' is used by both class #1 and class #2"):
        load_scheme(path)


def test_unknown_class_field_rejected(tmp_path):
    path = write_scheme(tmp_path, [class_row("AAA", "a", "#000001", ", lineages: other")])
    with pytest.raises(SchemeError, match="unknown field.*lineages"):
        load_scheme(path)


def test_blank_spanish_name_rejected(tmp_path):
    row = ("{code: AAA, en: a, es: '', color: '#000001', key: a, counted: true, "
           "lineage: other, blast: 'no'}")
    with pytest.raises(SchemeError, match="class AAA lacks es"):
        load_scheme(write_scheme(tmp_path, [row]))


def test_scheme_without_counted_class_rejected(tmp_path):
    row = class_row("AAA", "a", "#000001").replace("counted: true", "counted: false")
    with pytest.raises(SchemeError, match="no class has 'counted: true'"):
        load_scheme(write_scheme(tmp_path, [row]))


def test_counted_per_100_class_rejected(tmp_path):
    path = write_scheme(tmp_path, [class_row("AAA", "a", "#000001", ", per_100: true")])
    with pytest.raises(SchemeError, match="class AAA is counted and also has 'per_100: true'"):
        load_scheme(path)


def test_unknown_specimen_rejected(tmp_path):
    path = write_scheme(tmp_path, [class_row("AAA", "a", "#000001")],
                        header="name: custom\nspecimen: urine\n")
    with pytest.raises(SchemeError, match="specimen 'urine'"):
        load_scheme(path)


def test_user_scheme_keeps_its_path(tmp_path):
    path = write_scheme(tmp_path, [class_row("AAA", "a", "#000001")],
                        header="name: lab\ntarget: 300\n")
    scheme = load_scheme(path)
    assert scheme.name == "lab"
    assert scheme.source == str(path.resolve())
    assert scheme.default_target == 300
    assert scheme.specimen == "bone_marrow"


def test_blood_scheme_roles():
    scheme = load_scheme("peripheral_blood")
    assert scheme.specimen == "peripheral_blood"
    assert scheme.default_target == 200
    assert scheme.source == "peripheral_blood"
    assert not scheme["EBO"].counted
    assert scheme["EBO"].per_100
    assert scheme["LYA"].counted
    assert scheme["LYA"].lineage == "lymphoid"
    assert scheme["BLA"].blast == "yes"
    assert scheme["PMC"].blast == "monocytic"
    assert not scheme["KSC"].counted
    assert not scheme["ART"].counted
    assert scheme["NGB"].es == "neutrófilo en cayado"
    assert "MGK" not in scheme


def test_blood_scheme_shares_marrow_keys_and_colours():
    blood, marrow = load_scheme("peripheral_blood"), default_scheme()
    for cell_class in blood.classes:
        if cell_class.code in marrow:
            assert cell_class.key == marrow[cell_class.code].key, cell_class.code
            assert cell_class.color == marrow[cell_class.code].color, cell_class.code


def test_shipped_model_fits_both_schemes():
    card = json.loads((Path(napari_alma.__file__).parent / "learning" / "default_model"
                       / "card.json").read_text(encoding="utf-8"))
    default_scheme().check_model_classes(card["classes"])
    load_scheme("peripheral_blood").check_model_classes(card["classes"])


def test_marrow_class_outside_blood_scheme_named():
    with pytest.raises(SchemeError, match="does not have: MGK, PEB"):
        load_scheme("peripheral_blood").check_model_classes(["NGS", "MGK", "PEB"], "model X")
