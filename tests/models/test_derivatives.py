"""Forces and stress are exact derivatives of the energy; the energy is smooth at the cutoff."""

import pytest
import torch

from mlff import testing
from tests.models.conftest import make_potential
from tests.structures import ethanol, silicon, water_box


def test_forces_match_finite_difference_molecule(potential64):
    testing.assert_forces_match_finite_difference(potential64, ethanol(), max_atoms=3)


def test_forces_match_finite_difference_crystal(potential64):
    testing.assert_forces_match_finite_difference(potential64, silicon())


@pytest.mark.slow
def test_forces_match_finite_difference_water_box(potential64):
    testing.assert_forces_match_finite_difference(potential64, water_box(), max_atoms=2)


def test_stress_matches_strain_derivative(potential64):
    testing.assert_stress_matches_strain_derivative(potential64, silicon())


@pytest.mark.slow
def test_stress_matches_strain_derivative_water_box(potential64):
    testing.assert_stress_matches_strain_derivative(potential64, water_box())


@pytest.mark.parametrize("atomic_number", [1, 8])
def test_energy_continuous_across_cutoff(potential64, atomic_number):
    testing.assert_smooth_at_cutoff(potential64, ethanol(), atomic_number)


def test_energy_continuous_across_cutoff_float32(family):
    # float32 rounds a total energy of a few eV to ~1e-7 eV per operation: allow 1e-5 eV
    potential = make_potential(family, torch.float32)
    testing.assert_smooth_at_cutoff(potential, ethanol(), 1, tolerance=1e-5)
