"""The pool halves of the leak-free active-learning benchmark, on the real PBC labels."""

import numpy as np
import pytest

from benchmarks.active_learning import pool_halves
from napari_alma.learning import pbc


@pytest.fixture(scope="module")
def pool_labels(data_root):
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    held_out = {r["cell_id"] for r in pbc.held_out_records(records)}
    return np.array([pbc.PBC_TO_SCHEME[r["prefix"]] for r in records
                     if r["prefix"] in pbc.PBC_TO_SCHEME and r["cell_id"] not in held_out])


def test_halves_cover_pool_once(pool_labels):
    halves = pool_halves(pool_labels)
    assert len(pool_labels) == 800
    assert set(halves) == {"A", "B"}
    assert len(halves) == len(pool_labels)


def test_halves_are_stratified(pool_labels):
    halves = pool_halves(pool_labels)
    for code in sorted(set(pool_labels)):
        in_a = int(np.sum((pool_labels == code) & (halves == "A")))
        in_b = int(np.sum((pool_labels == code) & (halves == "B")))
        assert in_a == in_b == 40, code


def test_halves_depend_on_seed_only(pool_labels):
    first = pool_halves(pool_labels, seed=0)
    assert np.array_equal(first, pool_halves(pool_labels, seed=0))
    assert not np.array_equal(first, pool_halves(pool_labels, seed=1))
