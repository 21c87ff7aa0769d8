"""Every shipped potential loads, says what it is, and reproduces its stored numbers.

``potentials/reference/NAME.json`` holds a configuration and the energy, forces (and stress)
that ``potentials/NAME.pt`` gave on it when it was trained (potentials/training/reference.py).
A silently changed file, a broken loader or a changed model implementation fails here.
"""

import json
import os

import numpy as np
import pytest
import torch

import ase
import ase.build
from ase.neighborlist import natural_cutoffs, neighbor_list
from ase.optimize import BFGS

from mlff import MLFFCalculator, load_potential
from mlff.export import read_metadata

POTENTIALS = os.path.join(os.path.dirname(__file__), "..", "..", "potentials")
SHIPPED = {
    # name: (species, periodic training data)
    "ethanol": ([1, 6, 8], False),
    "aspirin": ([1, 6, 8], False),
    "water": ([1, 8], True),
    "si": ([14], True),
}
MAX_FILE_BYTES = 5 * 1024 * 1024


def _path(name: str) -> str:
    return os.path.join(POTENTIALS, f"{name}.pt")


def _reference(name: str) -> dict:
    with open(os.path.join(POTENTIALS, "reference", f"{name}.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_file_is_small_and_metadata_complete(name):
    path = _path(name)
    assert os.path.getsize(path) < MAX_FILE_BYTES
    metadata = read_metadata(path)
    species, _ = SHIPPED[name]
    assert metadata["species"] == species
    assert metadata["model_family"] == "mace"
    assert metadata["cutoff"] > 0
    assert metadata["units"]["energy"] == "eV" and metadata["units"]["length"] == "Angstrom"
    test_errors = metadata["test_errors"]
    assert 0 < test_errors["forces_mae"] < 0.2  # eV/A: the card quotes these
    card = os.path.join(POTENTIALS, f"{name}.md")
    assert os.path.isfile(card), f"{name}.pt ships without its model card {name}.md"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_reproduces_stored_energy_and_forces(name):
    record = _reference(name)
    atoms = ase.Atoms(numbers=record["numbers"], positions=record["positions"], cell=record["cell"], pbc=record["pbc"])
    atoms.calc = MLFFCalculator(_path(name))
    # float32 potentials; the stored numbers may come from another torch build or thread count
    np.testing.assert_allclose(atoms.get_potential_energy(), record["energy"], rtol=1e-6, atol=2e-4)
    np.testing.assert_allclose(atoms.get_forces(), np.array(record["forces"]), rtol=1e-4, atol=2e-4)
    if "stress" in record:
        np.testing.assert_allclose(atoms.get_stress(), np.array(record["stress"]), rtol=1e-4, atol=1e-6)


def test_ethanol_relaxes_to_chemical_bond_lengths():
    atoms = ase.build.molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=0)
    atoms.calc = MLFFCalculator(_path("ethanol"))
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=300)
    carbon_carbon = atoms.get_distance(0, 1)
    carbon_oxygen = atoms.get_distance(1, 2)  # CH3CH2OH in ase.build: C0 C1 O2 H3 (on O) ...
    oxygen_hydrogen = atoms.get_distance(2, 3)
    # PBE equilibrium of ethanol: C-C 1.52, C-O 1.43, O-H 0.97 Angstrom
    assert abs(carbon_carbon - 1.52) < 0.03
    assert abs(carbon_oxygen - 1.43) < 0.03
    assert abs(oxygen_hydrogen - 0.97) < 0.03


def test_silicon_lattice_constant_close_to_dft():
    calculator = MLFFCalculator(_path("si"))
    lattice = np.linspace(5.38, 5.56, 7)
    energies = []
    for a in lattice:
        atoms = ase.build.bulk("Si", "diamond", a=a, cubic=True)
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy())
    curvature, slope, _ = np.polyfit(lattice, energies, 2)
    assert curvature > 0
    assert abs(-slope / (2 * curvature) - 5.469) < 0.03  # mlearn's DFT (PBE) cell: 5.469 A


def test_aspirin_relaxes_to_chemical_bond_lengths():
    """From the stored (rattled rMD17) geometry to a minimum with PBE-like bond lengths."""
    record = _reference("aspirin")
    atoms = ase.Atoms(numbers=record["numbers"], positions=record["positions"])
    atoms.calc = MLFFCalculator(_path("aspirin"))
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=500)
    assert np.abs(atoms.get_forces()).max() < 0.01
    first, second = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.1))
    # covalent bond lengths in aspirin (PBE, Angstrom): aromatic and single C-C 1.39-1.50,
    # C-H 1.09, O-H 0.98, C=O 1.21 to ester/acid C-O 1.36-1.41
    windows = {("C", "C"): (1.37, 1.53), ("C", "H"): (1.07, 1.11), ("H", "O"): (0.96, 1.01), ("C", "O"): (1.19, 1.44)}
    symbols = atoms.get_chemical_symbols()
    seen = set()
    for i, j in zip(first, second):
        if i >= j:
            continue
        pair = tuple(sorted((symbols[i], symbols[j])))
        low, high = windows[pair]
        assert low < atoms.get_distance(i, j) < high, f"{pair} bond {i}-{j}: {atoms.get_distance(i, j):.3f} A"
        seen.add(pair)
    assert seen == set(windows)  # aspirin has all four kinds of bond
