"""Starting structures: molecules by name, water boxes."""

import numpy as np
import pytest
from ase.geometry import get_distances

from mlff.md.structures import build_molecule, water_box

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def test_molecule_alias():
    atoms = build_molecule("ethanol")
    assert atoms.get_chemical_formula() == "C2H6O" and not atoms.pbc.any()


@pytest.mark.parametrize("n_molecules", [1, 8, 10, 64])
def test_water_box(n_molecules):
    atoms = water_box(n_molecules, seed=3)
    assert len(atoms) == 3 * n_molecules and atoms.pbc.all()
    density = atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3
    assert density == pytest.approx(1.0, rel=1e-3)
    oxygens = atoms.positions[atoms.numbers == 8]
    if n_molecules > 1:
        _, distances = get_distances(oxygens, cell=atoms.cell, pbc=True)
        assert distances[~np.eye(n_molecules, dtype=bool)].min() > 2.0
    assert np.allclose(water_box(n_molecules, seed=3).positions, atoms.positions)
    assert n_molecules == 1 or not np.allclose(water_box(n_molecules, seed=4).positions, atoms.positions)
