"""Energies are invariant and forces/stress equivariant under E(3) and atom permutations."""

import pytest

from mlff import testing
from tests.structures import ethanol, silicon_cubic, water_box

SYSTEMS = {"ethanol": ethanol, "silicon": silicon_cubic, "water_box": water_box}


@pytest.mark.parametrize("system", SYSTEMS)
def test_rotations_reflections_translations(potential, system):
    testing.assert_e3_equivariant(potential, SYSTEMS[system](), seed=11)


def test_translation_alone(potential):
    testing.assert_translation_invariant(potential, water_box(), seed=13)


@pytest.mark.parametrize("system", ["ethanol", "water_box"])
def test_permutation(potential, system):
    testing.assert_permutation_equivariant(potential, SYSTEMS[system](), seed=14)
