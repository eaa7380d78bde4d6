"""Class schemes: the cell classes a reviewer can assign, loaded from YAML.

A scheme fixes, for each class, its code, English and Spanish names, display colour,
keyboard key, whether it is counted in the nucleated differential count (NDC), its
lineage (the side of the myeloid:erythroid ratio) and its blast role. Colours belong to
the class, so they never depend on which classes a slide happens to contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

LINEAGES = ("myeloid", "erythroid", "lymphoid", "other")
BLAST_ROLES = ("yes", "no", "monocytic", "apl")
LANGUAGES = ("en", "es")
REQUIRED_FIELDS = ("code", "en", "es", "color", "key", "counted", "lineage", "blast")


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
        The name of a bundled scheme ("bone_marrow") or the path of a YAML file.

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
    return _parse_scheme(document, path)


def default_scheme() -> ClassScheme:
    """Return the bundled bone-marrow scheme."""
    return load_scheme("bone_marrow")


def _resolve_scheme_path(source: str | Path) -> Path:
    path = Path(source)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
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
    classes = tuple(
        _parse_class(entry, index, path) for index, entry in enumerate(document["classes"])
    )
    _check_unique(classes, "code", path)
    _check_unique(classes, "key", path)
    title = document.get("title") or {}
    return ClassScheme(
        name=str(document.get("name") or path.stem),
        version=int(document.get("version", 1)),
        classes=classes,
        title_en=str(title.get("en", "")),
        title_es=str(title.get("es", "")),
    )


def _parse_class(entry: object, index: int, path: Path) -> CellClass:
    if not isinstance(entry, dict):
        raise SchemeError(f"{path}: class #{index + 1} is not a mapping.")
    missing = [field for field in REQUIRED_FIELDS if entry.get(field) in (None, "")]
    if missing:
        label = entry.get("code", f"#{index + 1}")
        raise SchemeError(f"{path}: class {label} lacks {', '.join(missing)}.")
    code = str(entry["code"])
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
    )


def _check_unique(classes: tuple[CellClass, ...], field: str, path: Path) -> None:
    seen: dict[str, str] = {}
    for cell_class in classes:
        value = getattr(cell_class, field)
        if value in seen:
            raise SchemeError(
                f"{path}: {field} {value!r} is used by both {seen[value]} and {cell_class.code}."
            )
        seen[value] = cell_class.code
