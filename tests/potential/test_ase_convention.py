"""Units and signs agree with ASE: forces and stress against ASE's own finite differences."""

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from mlff import testing
from tests.structures import water_box


class _TestCalculator(Calculator):
    """Minimal ASE calculator over a Potential, for convention checks only."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential):
        super().__init__()
        self.potential = potential

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        result = testing.predict(self.potential, self.atoms, compute_stress=bool(self.atoms.pbc.all()))
        self.results["energy"] = self.results["free_energy"] = float(result["energy"])
        self.results["forces"] = result["forces"]
        if "stress" in result:
            s = result["stress"]
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def test_stress_and_forces_match_ase_numerics(potential64):
    atoms = water_box()
    atoms.calc = _TestCalculator(potential64)
    numerical_stress = calculate_numerical_stress(atoms, eps=1e-5)
    np.testing.assert_allclose(atoms.get_stress(), numerical_stress, rtol=1e-6, atol=1e-10)
    numerical_forces = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), numerical_forces, rtol=1e-6, atol=1e-9)
