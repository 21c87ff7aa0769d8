"""One code path: batched = one by one, scripted = eager, small cell = supercell, isolated atom = E0."""

import pytest

from mlff import testing
from tests.structures import REFERENCE_ENERGIES, crystals, ethanol, molecules, silicon, tiny_hydrogen_cell, water_box


def test_batch_matches_single(potential):
    """Molecules and crystals mixed in one batch."""
    testing.assert_batch_matches_single(potential, [molecules()[0], crystals()[0], molecules()[1], crystals()[1]])


def test_scripted_matches_eager(potential):
    scripted = testing.assert_scripted_matches_eager(potential, crystals())
    testing.assert_scripted_matches_eager(potential, molecules(), scripted=scripted)
    testing.assert_isolated_atom_energy(scripted, 7, REFERENCE_ENERGIES[7])


def test_edges_beyond_cutoff_are_ignored(potential):
    for atoms in (ethanol(), water_box()):
        testing.assert_edges_beyond_cutoff_ignored(potential, atoms, skin=1.0)


def test_small_cell_matches_supercell(potential):
    testing.assert_small_cell_matches_supercell(potential, silicon(), repeat=(2, 2, 1))


def test_cell_much_smaller_than_cutoff(potential):
    testing.assert_small_cell_matches_supercell(potential, tiny_hydrogen_cell(), repeat=(2, 1, 3))


@pytest.mark.parametrize("atomic_number", [1, 8, 14])
def test_isolated_atom_gives_reference_energy(potential, atomic_number):
    testing.assert_isolated_atom_energy(potential, atomic_number, REFERENCE_ENERGIES[atomic_number])
