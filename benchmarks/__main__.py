"""Dispatch ``python -m benchmarks NAME [args]`` to ``benchmarks/NAME.py``'s ``main(argv)``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _available() -> list[str]:
    folder = Path(__file__).parent
    return sorted(
        info.name for info in pkgutil.iter_modules([str(folder)]) if not info.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    """Run the benchmark named by ``argv[0]`` with the remaining arguments."""
    names = _available()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m benchmarks NAME [args]; NAME is one of: {', '.join(names)}")
        return 0 if argv else 2
    name = argv[0]
    if name not in names:
        print(f"Unknown benchmark {name!r}; expected one of: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{name}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
