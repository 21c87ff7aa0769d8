"""The compiled neighbour list gives exactly the pairs of ASE and matscipy.

Random triclinic systems with random periodicity masks, densities and cutoffs up to 3x the
shortest cell height (many periodic images), float32 and float64, batched and unbatched.
"""

import ase.neighborlist
import numpy as np
import pytest
import torch

from mlff.neighbors import neighbor_list

from .systems import as_dtype, mlff_pairs, pair_set, random_system

matscipy_neighbours = pytest.importorskip("matscipy.neighbours", reason="matscipy is part of the test environment")

DTYPES = [torch.float32, torch.float64]


def ase_pairs(atoms, cutoff):
    i, j, shifts = ase.neighborlist.neighbor_list("ijS", atoms, cutoff, self_interaction=False)
    return pair_set(i, j, shifts)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_random_systems_match_ase(seed, dtype):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        atoms, cutoff = random_system(rng)
        atoms = as_dtype(atoms, dtype)
        assert mlff_pairs(atoms, cutoff, dtype) == ase_pairs(atoms, cutoff)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(2))
def test_random_systems_match_matscipy(seed, dtype):
    # matscipy wants a non-degenerate cell along every axis, periodic or not
    rng = np.random.default_rng(100 + seed)
    for _ in range(60):
        atoms, cutoff = random_system(rng)
        atoms = as_dtype(atoms, dtype)
        if len(atoms) == 0:
            continue
        i, j, shifts = matscipy_neighbours.neighbour_list("ijS", atoms, cutoff)
        expected = pair_set(i, j, shifts)
        # matscipy keeps an atom's own images only along periodic axes, as we do
        assert mlff_pairs(atoms, cutoff, dtype) == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_equals_one_by_one(dtype):
    rng = np.random.default_rng(7)
    systems = [random_system(rng, max_atoms=25) for _ in range(12)]
    cutoff = min(c for _, c in systems)
    systems = [as_dtype(a, dtype) for a, _ in systems]
    positions = torch.tensor(np.concatenate([a.positions for a in systems]), dtype=dtype)
    cell = torch.tensor(np.stack([np.asarray(a.cell) for a in systems]), dtype=dtype)
    pbc = torch.tensor(np.stack([a.pbc for a in systems]))
    batch = torch.cat([torch.full((len(a),), g, dtype=torch.long) for g, a in enumerate(systems)])
    edge_index, shifts = neighbor_list(positions, cell, pbc, cutoff, batch)
    batched = pair_set(edge_index[0], edge_index[1], shifts)

    expected = set()
    offset = 0
    for atoms in systems:
        for i, j, *s in ase_pairs(atoms, cutoff):
            expected.add((i + offset, j + offset, *s))
        offset += len(atoms)
    assert batched == expected
    # every edge stays inside its own system
    assert torch.equal(batch[edge_index[0]], batch[edge_index[1]])


def test_unsorted_batch():
    rng = np.random.default_rng(3)
    a, cutoff = random_system(rng, max_atoms=20)
    b, _ = random_system(rng, max_atoms=20)
    atoms = [a, b]
    order = rng.permutation(len(a) + len(b))
    positions = np.concatenate([a.positions, b.positions])[order]
    batch = np.concatenate([np.zeros(len(a), int), np.ones(len(b), int)])[order]
    edge_index, shifts = neighbor_list(
        torch.tensor(positions),
        torch.tensor(np.stack([np.asarray(x.cell) for x in atoms])),
        torch.tensor(np.stack([x.pbc for x in atoms])),
        cutoff,
        torch.tensor(batch),
    )
    inverse = np.argsort(order)  # new index of original atom k is inverse[k]
    expected = set()
    offset = 0
    for x in atoms:
        for i, j, *s in ase_pairs(x, cutoff):
            expected.add((int(inverse[i + offset]), int(inverse[j + offset]), *s))
        offset += len(x)
    assert pair_set(edge_index[0], edge_index[1], shifts) == expected
