"""Edge cases of the neighbour list: empty and isolated systems, open and mixed periodicity,
tiny cells, atoms far outside the cell, and the edge-vector convention."""

import ase
import ase.build
import ase.neighborlist
import numpy as np
import pytest
import torch

from mlff.neighbors import edge_vectors, neighbor_list

from .systems import mlff_pairs, pair_set


def ase_pairs(atoms, cutoff):
    i, j, shifts = ase.neighborlist.neighbor_list("ijS", atoms, cutoff)
    return pair_set(i, j, shifts)


def test_empty_system():
    edge_index, shifts = neighbor_list(torch.zeros(0, 3), torch.eye(3), torch.tensor([True] * 3), 3.0)
    assert edge_index.shape == (2, 0) and shifts.shape == (0, 3)
    assert edge_index.dtype == torch.int64 and shifts.dtype == torch.int64


def test_isolated_atom_without_and_with_periodicity():
    position = torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64)
    edge_index, _ = neighbor_list(position, torch.zeros(3, 3, dtype=torch.float64), torch.tensor([False] * 3), 5.0)
    assert edge_index.shape == (2, 0)
    # in a 3 A periodic cubic cell, within 4 A the atom sees its 6 face images (3 A), not the
    # 12 edge images (4.24 A); within 4.5 A it sees both
    cell = 3.0 * torch.eye(3, dtype=torch.float64)
    edge_index, shifts = neighbor_list(position, cell, torch.tensor([True] * 3), 4.0)
    assert edge_index.shape[1] == 6
    edge_index, shifts = neighbor_list(position, cell, torch.tensor([True] * 3), 4.5)
    assert edge_index.shape[1] == 6 + 12
    assert (edge_index == 0).all()
    assert not (shifts == 0).all(dim=1).any(), "an atom must not pair with itself without a shift"


def test_open_system_ignores_cell():
    atoms = ase.build.molecule("C6H6")
    expected = ase_pairs(atoms, 2.5)
    positions = torch.tensor(atoms.positions)
    for cell in (torch.zeros(3, 3), 0.1 * torch.eye(3), torch.ones(3, 3)):
        edge_index, shifts = neighbor_list(positions, cell.double(), torch.tensor([False] * 3), 2.5)
        assert pair_set(edge_index[0], edge_index[1], shifts) == expected


@pytest.mark.parametrize("pbc", [(True, True, False), (True, False, False), (False, True, True), (False, False, True)])
def test_slabs_and_wires(pbc):
    rng = np.random.default_rng(1)
    cell = np.array([[3.1, 0.0, 0.0], [1.2, 2.9, 0.0], [0.4, -0.7, 3.5]])
    atoms = ase.Atoms("H12", positions=rng.uniform(-2, 8, size=(12, 3)), cell=cell, pbc=pbc)
    assert mlff_pairs(atoms, 7.0) == ase_pairs(atoms, 7.0)


def test_cell_much_smaller_than_cutoff():
    atoms = ase.build.bulk("Si", "diamond", a=5.43)  # 2 atoms, heights about 3.1 A
    cutoff = 12.0
    expected = ase_pairs(atoms, cutoff)
    assert mlff_pairs(atoms, cutoff) == expected
    assert len(expected) > 500  # hundreds of images of two atoms


def test_atoms_far_outside_the_cell():
    atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    far = atoms.copy()
    far.positions += np.array([[-37.0, 101.3, -5.5]]) + 3.6 * np.array([[-20, 7, 3]])
    pairs = ase_pairs(far, 4.0)
    assert mlff_pairs(far, 4.0) == pairs
    # same distances as the wrapped structure
    for a in (atoms, far):
        edge_index, shifts = neighbor_list(
            torch.tensor(a.positions), torch.tensor(np.asarray(a.cell)), torch.tensor(a.pbc), 4.0
        )
        vectors = edge_vectors(torch.tensor(a.positions), torch.tensor(np.asarray(a.cell)), edge_index, shifts)
        lengths = torch.sort(vectors.norm(dim=1)).values
        if a is atoms:
            reference = lengths
    torch.testing.assert_close(lengths, reference)


def test_edge_vectors_convention_matches_ase():
    rng = np.random.default_rng(5)
    cell = np.array([[4.0, 0.3, 0.0], [0.5, 3.8, 0.2], [-0.4, 0.1, 4.2]])
    atoms = ase.Atoms("H9", positions=rng.uniform(-3, 6, (9, 3)), cell=cell, pbc=True)
    i, j, d_ase = ase.neighborlist.neighbor_list("ijD", atoms, 5.0)
    edge_index, shifts = neighbor_list(torch.tensor(atoms.positions), torch.tensor(cell), torch.tensor(atoms.pbc), 5.0)
    vectors = edge_vectors(torch.tensor(atoms.positions), torch.tensor(cell), edge_index, shifts)
    ours = {(a, b, *np.round(v, 8)) for a, b, v in zip(edge_index[0].tolist(), edge_index[1].tolist(), vectors.numpy())}
    theirs = {(a, b, *np.round(v, 8)) for a, b, v in zip(i.tolist(), j.tolist(), d_ase)}
    assert ours == theirs
    assert (vectors.norm(dim=1) < 5.0).all()


def test_deterministic():
    rng = np.random.default_rng(9)
    positions = torch.tensor(rng.uniform(0, 10, (300, 3)))
    cell = 10.0 * torch.eye(3, dtype=torch.float64)
    pbc = torch.tensor([True, True, True])
    first = neighbor_list(positions, cell, pbc, 4.0)
    second = neighbor_list(positions, cell, pbc, 4.0)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_sparse_open_system_does_not_blow_up():
    # two atoms 1e4 A apart: a naive cell grid would need 1e12 bins
    positions = torch.tensor([[0.0, 0.0, 0.0], [1e4, 1e4, 1e4], [1.0, 0.0, 0.0]], dtype=torch.float64)
    edge_index, _ = neighbor_list(positions, torch.zeros(3, 3, dtype=torch.float64), torch.tensor([False] * 3), 2.0)
    assert pair_set(edge_index[0], edge_index[1], torch.zeros(edge_index.shape[1], 3, dtype=torch.long)) == {
        (0, 2, 0, 0, 0),
        (2, 0, 0, 0, 0),
    }
