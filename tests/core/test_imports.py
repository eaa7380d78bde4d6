"""The package's layers import downward only, and light modules never load torch or Qt."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "napari_alma"

ALLOWED = {
    "core": {"core"},
    "slides": {"core", "slides"},
    "store": {"core", "store"},
    "learning": {"core", "slides", "store", "learning"},
    "report": {"core", "store", "report"},
    "widgets": {"core", "slides", "store", "learning", "report", "widgets"},
}


def _imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "napari_alma" and len(parts) > 1 and parts[1] in ALLOWED:
                layers.add(parts[1])
    return layers


def test_layers_import_downward_only():
    violations = []
    for layer, allowed in ALLOWED.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            extra = _imported_layers(path) - allowed
            if extra:
                violations.append(f"{path.relative_to(PACKAGE)} imports {sorted(extra)}")
    assert violations == []


def test_core_imports_with_heavy_libraries_blocked():
    code = (
        "import sys\n"
        "for name in ('torch', 'qtpy', 'PyQt5', 'PyQt6', 'napari', 'magicgui'):\n"
        "    sys.modules[name] = None\n"
        "import napari_alma, napari_alma.core.scheme, napari_alma.core.counting\n"
        "import napari_alma.core.i18n, napari_alma.store.project\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_package_import_loads_no_torch_or_qt():
    code = (
        "import sys, napari_alma, napari_alma.slides, napari_alma.learning\n"
        "print(sorted(m for m in ('torch', 'PyQt5', 'qtpy', 'napari') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
