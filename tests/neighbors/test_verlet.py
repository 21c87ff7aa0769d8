"""Verlet-skin reuse gives exactly the pairs of a fresh build at every step."""

import numpy as np
import pytest
import torch

from mlff.neighbors import VerletNeighborList, neighbor_list

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
