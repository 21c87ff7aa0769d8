"""Verlet-skin reuse gives exactly the pairs of a fresh build at every step."""

import numpy as np
import pytest
import torch

from mlff.neighbors import VerletNeighborList, edge_vectors, neighbor_list

from .systems import pair_set


def as_set(edge_index, shifts):
    return pair_set(edge_index[0], edge_index[1], shifts)


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True), (False, False, False)])
def test_random_walk_matches_fresh_builds(pbc):
    rng = np.random.default_rng(11)
    cell = torch.tensor([[7.0, 0.0, 0.0], [1.0, 6.5, 0.0], [0.5, -0.8, 7.2]], dtype=torch.float64)
    positions = torch.tensor(rng.uniform(0, 7, (60, 3)), dtype=torch.float64)
    pbc = torch.tensor(pbc)
    cutoff, skin = 3.0, 0.6
    verlet = VerletNeighborList(cutoff, skin)
    for _ in range(150):
        positions = positions + torch.tensor(rng.normal(0.0, 0.04, (60, 3)))
        reused = as_set(*verlet(positions, cell, pbc))
        fresh = as_set(*neighbor_list(positions, cell, pbc, cutoff))
        assert reused == fresh
    assert 1 < verlet.n_builds < 100, "the list must be reused between rebuilds"


def test_rebuilds_when_cell_changes():
    cell = 6.0 * torch.eye(3, dtype=torch.float64)
    positions = torch.rand(30, 3, dtype=torch.float64) * 6.0
    pbc = torch.tensor([True, True, True])
    verlet = VerletNeighborList(2.5, 0.5)
    verlet(positions, cell, pbc)
    verlet(positions, cell, pbc)
    assert verlet.n_builds == 1
    strained = cell * 0.97
    assert as_set(*verlet(positions, strained, pbc)) == as_set(*neighbor_list(positions, strained, pbc, 2.5))
    assert verlet.n_builds == 2


def test_rebuilds_after_large_move():
    cell = 6.0 * torch.eye(3, dtype=torch.float64)
    positions = torch.rand(30, 3, dtype=torch.float64) * 6.0
    pbc = torch.tensor([True, True, True])
    verlet = VerletNeighborList(2.5, 0.5)
    verlet(positions, cell, pbc)
    moved = positions.clone()
    moved[3] += torch.tensor([0.26, 0.0, 0.0], dtype=torch.float64)  # just over skin / 2
    assert as_set(*verlet(moved, cell, pbc)) == as_set(*neighbor_list(moved, cell, pbc, 2.5))
    assert verlet.n_builds == 2


def test_scriptable():
    verlet = torch.jit.script(VerletNeighborList(2.5, 0.5))
    positions = torch.rand(20, 3, dtype=torch.float64) * 5.0
    cell = 5.0 * torch.eye(3, dtype=torch.float64)
    pbc = torch.tensor([True, True, True])
    assert as_set(*verlet(positions, cell, pbc)) == as_set(*neighbor_list(positions, cell, pbc, 2.5))


def test_invalid_parameters():
    with pytest.raises(ValueError, match="cutoff"):
        VerletNeighborList(-1.0, 0.5)
    with pytest.raises(ValueError, match="skin"):
        VerletNeighborList(2.0, -0.5)


def test_filter_op_matches_torch_and_checks_indices():
    from mlff.neighbors.verlet import filter_neighbors

    rng = np.random.default_rng(2)
    cell = torch.tensor([[6.0, 0.0, 0.0], [0.5, 6.2, 0.0], [0.3, 0.2, 5.9]], dtype=torch.float64)
    positions = torch.tensor(rng.uniform(0, 6, (40, 3)), dtype=torch.float64)
    pbc = torch.tensor([True, True, True])
    edge_index, shifts = neighbor_list(positions, cell, pbc, 3.5)
    offsets = shifts.double() @ cell
    kept_index, kept_shifts = filter_neighbors(positions, edge_index, shifts, offsets, 2.5, False)
    assert as_set(kept_index, kept_shifts) == as_set(*neighbor_list(positions, cell, pbc, 2.5))
    with pytest.raises(ValueError, match="outside"):
        filter_neighbors(positions[:5], edge_index, shifts, offsets, 2.5, False)
    with pytest.raises(ValueError, match="offsets must have shape"):
        filter_neighbors(positions, edge_index, shifts, offsets[:3], 2.5, False)


def test_half_list_op_and_torch_fallback_agree():
    from mlff.neighbors import one_per_pair

    rng = np.random.default_rng(4)
    cell = torch.tensor([[3.0, 0.0, 0.0], [0.5, 3.2, 0.0], [0.3, 0.2, 2.9]], dtype=torch.float64)
    positions = torch.tensor(rng.uniform(-1, 4, (15, 3)), dtype=torch.float64)
    for pbc in ([True, True, True], [True, False, True], [False, False, False]):
        pbc = torch.tensor(pbc)
        full = neighbor_list(positions, cell, pbc, 5.0)
        half = torch.ops.mlff.neighbor_pairs(
            positions, cell.view(1, 3, 3), pbc.view(1, 3), torch.zeros(15, dtype=torch.long), 5.0
        )
        half_set = as_set(*half)
        mirrored = {(j, i, -a, -b, -c) for i, j, a, b, c in half_set}
        assert half_set.isdisjoint(mirrored) and half_set | mirrored == as_set(*full)
        pairs = one_per_pair(*full)
        assert len(as_set(full[0][:, pairs], full[1][pairs])) == len(half_set)


def test_superset_mode_holds_the_fresh_list_within_the_cutoff():
    rng = np.random.default_rng(12)
    cell = 7.0 * torch.eye(3, dtype=torch.float64)
    positions = torch.tensor(rng.uniform(0, 7, (50, 3)), dtype=torch.float64)
    pbc = torch.tensor([True, True, False])
    verlet = VerletNeighborList(3.0, 0.8, exact=False)
    for _ in range(60):
        positions = positions + torch.tensor(rng.normal(0.0, 0.04, (50, 3)))
        edge_index, shifts = verlet(positions, cell, pbc)
        lengths = edge_vectors(positions, cell, edge_index, shifts).norm(dim=1)
        within = lengths < 3.0
        assert as_set(edge_index[:, within], shifts[within]) == as_set(*neighbor_list(positions, cell, pbc, 3.0))
    assert verlet.n_builds < 60
