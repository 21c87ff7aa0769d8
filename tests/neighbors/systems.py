"""Random atomic systems for neighbour-list tests, and set-of-pairs helpers."""

import ase
import numpy as np
import torch

from mlff.neighbors import neighbor_list


def face_heights(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell, one per lattice vector (Angstrom)."""
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])


def random_system(rng: np.random.Generator, max_atoms: int = 40, max_cutoff_over_height: float = 3.0):
    """A random triclinic system with a random pbc mask, density and cutoff.

    Atoms are spread over the cell and up to one cell length beyond it (negative coordinates
    included); cutoffs go up to ``max_cutoff_over_height`` times the shortest face height.
    """
    while True:
        scale = rng.uniform(2.0, 7.0)
        cell = scale * (np.eye(3) + rng.uniform(-0.45, 0.45, size=(3, 3)))
        if face_heights(cell).min() > 0.3 * scale:
            break
    pbc = rng.random(3) < 0.6
    n_atoms = int(rng.integers(0, max_atoms + 1))
    fractional = rng.uniform(-0.5, 1.5, size=(n_atoms, 3))
    positions = fractional @ cell
    cutoff = rng.uniform(0.2, max_cutoff_over_height) * face_heights(cell).min()
    return ase.Atoms(numbers=np.ones(n_atoms, dtype=int), positions=positions, cell=cell, pbc=pbc), cutoff


def pair_set(senders, receivers, shifts):
    """Pairs as a set of (sender, receiver, sx, sy, sz) tuples; asserts there are no duplicates."""
    senders = np.asarray(senders).tolist()
    receivers = np.asarray(receivers).tolist()
    shifts = np.asarray(shifts).reshape(-1, 3).tolist()
    pairs = {(i, j, *s) for i, j, s in zip(senders, receivers, shifts)}
    assert len(pairs) == len(senders), "duplicate pairs in the list"
    return pairs


def mlff_pairs(atoms: ase.Atoms, cutoff: float, dtype=torch.float64):
    positions = torch.tensor(atoms.positions, dtype=dtype)
    cell = torch.tensor(np.asarray(atoms.cell), dtype=dtype)
    pbc = torch.tensor(atoms.pbc)
    edge_index, shifts = neighbor_list(positions, cell, pbc, cutoff)
    return pair_set(edge_index[0], edge_index[1], shifts)


def as_dtype(atoms: ase.Atoms, dtype) -> ase.Atoms:
    """Copy of atoms whose positions and cell hold exactly the values representable in dtype."""
    if dtype == torch.float64:
        return atoms
    rounded = atoms.copy()
    rounded.positions = atoms.positions.astype(np.float32).astype(np.float64)
    rounded.cell = np.asarray(atoms.cell).astype(np.float32).astype(np.float64)
    return rounded
