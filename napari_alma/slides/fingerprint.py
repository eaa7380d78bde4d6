"""Content fingerprints that identify a slide independently of its file name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from napari_alma.slides.omezarr import ZARR_METADATA_FILES, is_zarr_store
from napari_alma.slides.slide import cannot_open

#: Bytes hashed from each end of a file.
EDGE_BYTES = 1 << 20
_ZARR_EXTRA_METADATA = (".zmetadata",)


def fingerprint(path: Path | str) -> str:
    """Return a SHA-256 content fingerprint of a slide file or OME-Zarr folder.

    For a file, the hash covers its size and its first and last ``EDGE_BYTES`` bytes,
    so it takes the same time for any file size. For a Zarr folder, it covers the
    metadata files (relative path and content) and the relative path and size of every
    chunk file, in sorted order, leaving out hidden files such as ``.DS_Store``. Renaming
    or moving the file or folder keeps the fingerprint. Two files of the same size that
    differ only in bytes away from both ends share it.

    Parameters
    ----------
    path : Path or str
        A slide file or a Zarr folder.

    Returns
    -------
    str
        64 lower-case hexadecimal digits.

    Raises
    ------
    SlideError
        When the path does not exist or is a folder that is not a Zarr store.
    """
    path = Path(path)
    if path.is_file():
        return _fingerprint_file(path)
    if is_zarr_store(path):
        return _fingerprint_zarr(path)
    if path.is_dir():
        raise cannot_open(
            path, "it is a folder but not a Zarr store", "Pass a slide file or a Zarr folder."
        )
    raise cannot_open(path, "the file does not exist", "Check the path.")


def _fingerprint_file(path: Path) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(size.to_bytes(8, "big"))
    with open(path, "rb") as file:
        digest.update(file.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            file.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(file.read())
    return digest.hexdigest()


def _fingerprint_zarr(root: Path) -> str:
    digest = hashlib.sha256()
    metadata_names = set(ZARR_METADATA_FILES) | set(_ZARR_EXTRA_METADATA)
    for relative, full in _files_sorted(root):
        if full.name.startswith(".") and full.name not in metadata_names:
            continue  # .DS_Store and similar files that file browsers add
        digest.update(relative.encode("utf-8") + b"\0")
        if full.name in metadata_names:
            digest.update(full.read_bytes())
        else:
            digest.update(full.stat().st_size.to_bytes(8, "big"))
    return digest.hexdigest()


def _files_sorted(root: Path):
    """Yield (relative POSIX path, full path) of every file below ``root``, sorted."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            full = Path(directory, name)
            yield full.relative_to(root).as_posix(), full
