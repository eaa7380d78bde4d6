"""Coarser pyramid levels computed lazily for files that store too few of them."""

from __future__ import annotations

import numpy as np

#: A coarsest stored level with a side above this many pixels gets computed levels.
MAX_COARSEST_SIDE = 4096
#: Computed levels stop once both sides are at most this many pixels.
OVERVIEW_SIDE = 1024
#: Chunk side of the computed levels, in pixels of that level.
CHUNK_SIDE = 1024


def add_overview_levels(levels: list) -> list:
    """Append coarser levels while the coarsest level is larger than ``MAX_COARSEST_SIDE``.

    Each new level averages blocks of ``2**k x 2**k`` pixels of the coarsest stored level
    (so it halves the previous one) and drops the rows and columns that do not fill a
    whole block. Nothing is read here: each new level is a dask graph over the stored one.

    Parameters
    ----------
    levels : list of dask arrays
        Stored levels, full resolution first, each ``(rows, cols)`` or ``(rows, cols, 3)``.

    Returns
    -------
    list of dask arrays
        ``levels`` followed by the computed levels (none when the coarsest is small
        enough). Computed levels keep the dtype of the stored ones.
    """
    base = levels[-1]
    if max(base.shape[:2]) <= MAX_COARSEST_SIDE:
        return list(levels)
    computed = []
    factor = 2
    while max(base.shape[:2]) // (factor // 2) > OVERVIEW_SIDE:
        computed.append(block_mean(base, factor))
        factor *= 2
    return list(levels) + computed


def block_mean(array, factor: int):
    """Average ``factor x factor`` pixel blocks of a ``(rows, cols[, samples])`` array lazily.

    Rows and columns that do not fill a whole block are dropped. The result keeps the
    dtype and has ``CHUNK_SIDE`` chunks.
    """
    import dask.array as da

    axes = {0: factor, 1: factor}
    coarse = da.coarsen(_mean_keep_dtype, array, axes, trim_excess=True)
    chunks = (CHUNK_SIDE, CHUNK_SIDE) + (-1,) * (array.ndim - 2)
    return coarse.rechunk(chunks)


def _mean_keep_dtype(block: np.ndarray, axis: tuple | None = None) -> np.ndarray:
    mean = np.mean(block, axis=axis, dtype=np.float64)
    if np.issubdtype(block.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(block.dtype)
