"""Helpers shared by the benchmarks: the machine description and the data folder."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Return the folder of real annotated images (``$ALMA_TEST_DATA`` or ``../shared/data``).

    Raises
    ------
    FileNotFoundError
        If neither folder exists.
    """
    candidates = [os.environ.get("ALMA_TEST_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError(
        "Real test images not found: set ALMA_TEST_DATA to the data folder "
        f"or place it at {REPO_ROOT.parent / 'shared' / 'data'}."
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info(packages: tuple[str, ...] = ("numpy", "scipy", "scikit-image")) -> dict:
    """Describe the machine a benchmark ran on: CPU, cores, memory, Python, package versions."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "cores": _usable_cores(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
    }


def emit(record: dict) -> None:
    """Print one benchmark record as a JSON object on one line."""
    print(json.dumps(record, ensure_ascii=False))
