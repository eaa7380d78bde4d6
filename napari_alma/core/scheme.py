"""Class schemes: the cell classes a reviewer can assign, loaded from YAML.

A scheme fixes, for each class, its code, English and Spanish names, display colour,
keyboard key, whether it is counted in the nucleated differential count (NDC), its
lineage (the side of the myeloid:erythroid ratio) and its blast role. Colours belong to
the class, so they never depend on which classes a slide happens to contain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import yaml

LINEAGES = ("myeloid", "erythroid", "lymphoid", "other")
BLAST_ROLES = ("yes", "no", "monocytic", "apl")
LANGUAGES = ("en", "es")
REQUIRED_FIELDS = ("code", "en", "es", "color", "key", "counted", "lineage", "blast")
OPTIONAL_FIELDS = ("me_optional", "per_100")
SPECIMENS = ("bone_marrow", "peripheral_blood")
SCHEME_FIELDS = ("name", "version", "title", "specimen", "target", "classes")


class SchemeError(ValueError):
    """A class scheme file is invalid, or a model's classes do not fit a scheme."""


@dataclass(frozen=True)
class CellClass:
    """One cell class of a scheme."""

    code: str
    en: str
    es: str
    color: str
    key: str
    counted: bool
    lineage: str
    blast: str
    me_optional: bool = False
    per_100: bool = False

    def name(self, lang: str = "en") -> str:
        """Return the class name in ``lang`` ("en" or "es")."""
        return self.es if lang == "es" else self.en

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        """Display colour as RGBA floats in [0, 1]."""
        hex_digits = self.color.lstrip("#")
        red, green, blue = (int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
        return (red, green, blue, 1.0)


@dataclass(frozen=True)
class ClassScheme:
    """An ordered set of cell classes with a name and a version."""

    name: str
    version: int
    classes: tuple[CellClass, ...]
    title_en: str = ""
    title_es: str = ""
    specimen: str = "bone_marrow"
    default_target: int = 500
    source: str = ""

    def title(self, lang: str = "en") -> str:
        """Return the scheme's title in ``lang``, or its name when it has none."""
        title = self.title_es if lang == "es" else self.title_en
        return title or self.name

    @property
    def codes(self) -> list[str]:
        """Class codes in scheme order."""
        return [cell_class.code for cell_class in self.classes]

    def __contains__(self, code: object) -> bool:
        return any(cell_class.code == code for cell_class in self.classes)

    def __getitem__(self, code: str) -> CellClass:
        for cell_class in self.classes:
            if cell_class.code == code:
                return cell_class
        raise KeyError(
            f"Unknown class code {code!r} in scheme {self.name!r}; "
            f"valid codes: {', '.join(self.codes)}"
        )

    def by_key(self, key: str) -> CellClass | None:
        """Return the class bound to keyboard ``key``, or None."""
        for cell_class in self.classes:
            if cell_class.key == key.lower():
                return cell_class
        return None

    def check_model_classes(self, model_classes: list[str], source: str = "model") -> None:
        """Raise SchemeError naming every class of ``model_classes`` that the scheme lacks.

        A model may know a subset of the scheme's classes, never a class outside it.
        """
        unknown = [code for code in model_classes if code not in self]
        if unknown:
            raise SchemeError(
                f"{source} predicts classes that scheme {self.name!r} does not have: "
                f"{', '.join(unknown)}. Use a model trained for this scheme, or load the "
                "scheme the model was trained with."
            )


def load_scheme(source: str | Path = "bone_marrow") -> ClassScheme:
    """Load and validate a class scheme.

    Parameters
    ----------
    source : str or Path
        The name of a bundled scheme ("bone_marrow", "peripheral_blood") or the path of a
        YAML file. The returned scheme's ``source`` is that name, or the file's absolute path.

    Raises
    ------
    SchemeError
        When the file is missing, is not valid YAML, or breaks a rule of the format.
    """
    path = _resolve_scheme_path(source)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SchemeError(f"Cannot read class scheme {path}: {err}") from err
    scheme = _parse_scheme(document, path)
    return replace(scheme, source=str(source) if _is_bundled(source) else str(path.resolve()))


def default_scheme() -> ClassScheme:
    """Return the bundled bone-marrow scheme."""
    return load_scheme("bone_marrow")


def _is_bundled(source: str | Path) -> bool:
    path = Path(source)
    return not (path.suffix.lower() in (".yaml", ".yml") or path.exists())


def _resolve_scheme_path(source: str | Path) -> Path:
    path = Path(source)
    if not _is_bundled(source):
        if not path.is_file():
            raise SchemeError(f"Class scheme file not found: {path}")
        return path
    bundled = resources.files("napari_alma.core") / "schemes" / f"{source}.yaml"
    if not bundled.is_file():
        raise SchemeError(
            f"No bundled class scheme named {source!r}; give the path of a YAML scheme file."
        )
    return Path(str(bundled))


def _parse_scheme(document: object, path: Path) -> ClassScheme:
    if not isinstance(document, dict) or not isinstance(document.get("classes"), list):
        raise SchemeError(f"{path}: expected a mapping with a 'classes' list.")
    _check_known_fields(document, SCHEME_FIELDS, f"{path}: the scheme", path)
    if not document["classes"]:
        raise SchemeError(f"{path}: the 'classes' list is empty; add at least one class.")
    classes = tuple(
        _parse_class(entry, index, path) for index, entry in enumerate(document["classes"])
    )
    _check_unique(classes, "code", path)
    _check_unique(classes, "key", path)
    _check_unique(classes, "color", path)
    if not any(cell_class.counted for cell_class in classes):
        raise SchemeError(
            f"{path}: no class has 'counted: true', so a differential would have no "
            "denominator; mark the classes of the nucleated differential count as counted."
        )
    title = document.get("title") or {}
    return ClassScheme(
        name=str(document.get("name") or path.stem),
        version=_positive_int(document.get("version", 1), "version", path),
        classes=classes,
        title_en=str(title.get("en", "")),
        title_es=str(title.get("es", "")),
        specimen=_specimen(document.get("specimen", "bone_marrow"), path),
        default_target=_positive_int(document.get("target", 500), "target", path),
    )


def _specimen(value: object, path: Path) -> str:
    if value not in SPECIMENS:
        raise SchemeError(
            f"{path}: specimen {value!r} is not supported; expected one of "
            f"{', '.join(SPECIMENS)}."
        )
    return str(value)


def _positive_int(value: object, field: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SchemeError(f"{path}: {field} {value!r} is invalid; expected a positive integer.")
    return value


def _check_known_fields(entry: dict, known: tuple[str, ...], where: str, path: Path) -> None:
    unknown = sorted(str(field) for field in entry if field not in known)
    if unknown:
        raise SchemeError(
            f"{where} has unknown field(s) {', '.join(unknown)}; expected fields among "
            f"{', '.join(known)}. Check the spelling."
        )


def _parse_class(entry: object, index: int, path: Path) -> CellClass:
    if not isinstance(entry, dict):
        raise SchemeError(f"{path}: class #{index + 1} is not a mapping.")
    missing = [field for field in REQUIRED_FIELDS if entry.get(field) in (None, "")]
    if missing:
        label = entry.get("code", f"#{index + 1}")
        raise SchemeError(f"{path}: class {label} lacks {', '.join(missing)}.")
    code = str(entry["code"])
    _check_known_fields(entry, REQUIRED_FIELDS + OPTIONAL_FIELDS, f"{path}: class {code}", path)
    if entry["lineage"] not in LINEAGES:
        raise SchemeError(
            f"{path}: class {code} has lineage {entry['lineage']!r}; "
            f"expected one of {', '.join(LINEAGES)}."
        )
    blast = str(entry["blast"]).lower() if not isinstance(entry["blast"], bool) else (
        "yes" if entry["blast"] else "no"
    )
    if blast not in BLAST_ROLES:
        raise SchemeError(
            f"{path}: class {code} has blast role {entry['blast']!r}; "
            f"expected one of {', '.join(BLAST_ROLES)}."
        )
    color = str(entry["color"])
    if not (color.startswith("#") and len(color) == 7):
        raise SchemeError(f"{path}: class {code} has colour {color!r}; expected '#rrggbb'.")
    key = str(entry["key"]).lower()
    if len(key) != 1:
        raise SchemeError(f"{path}: class {code} has key {key!r}; expected one character.")
    per_100 = bool(entry.get("per_100", False))
    if per_100 and entry["counted"]:
        raise SchemeError(
            f"{path}: class {code} is counted and also has 'per_100: true'; a class reported "
            "per 100 counted cells (such as erythroblasts in blood) must have 'counted: false'."
        )
    return CellClass(
        code=code,
        en=str(entry["en"]),
        es=str(entry["es"]),
        color=color.lower(),
        key=key,
        counted=bool(entry["counted"]),
        lineage=str(entry["lineage"]),
        blast=blast,
        me_optional=bool(entry.get("me_optional", False)),
        per_100=per_100,
    )


def _check_unique(classes: tuple[CellClass, ...], field: str, path: Path) -> None:
    seen: dict[str, str] = {}
    for index, cell_class in enumerate(classes):
        value = getattr(cell_class, field)
        # A duplicated code cannot name its two classes apart, so those are named by position.
        label = f"class #{index + 1}" if field == "code" else cell_class.code
        if value in seen:
            raise SchemeError(
                f"{path}: {field} {value!r} is used by both {seen[value]} and {label}; "
                f"give each class its own {field}."
            )
        seen[value] = label
