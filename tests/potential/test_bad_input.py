"""Bad input gives a clear error, never a silent NaN (eager and TorchScript)."""

import ase
import numpy as np
import pytest
import torch

from mlff import testing
from mlff.graph import from_atoms
from tests.models.conftest import make_potential
from tests.structures import TEST_CUTOFF, water, water_box


@pytest.fixture(params=["eager", "scripted"])
def mode(request):
    return request.param


def potential_in(family, mode):
    potential = make_potential(family, torch.float64)
    return potential if mode == "eager" else torch.jit.script(potential)


def expect_error(mode, match):
    """ValueError eagerly; under TorchScript the same message in a torch.jit.Error."""
    return pytest.raises(ValueError if mode == "eager" else torch.jit.Error, match=match)


def test_unknown_element(family, mode):
    potential = potential_in(family, mode)
    atoms = ase.Atoms("OAu", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    with expect_error(mode, r"unknown element.*\[79\]"):
        potential(from_atoms(atoms, TEST_CUTOFF))


def test_unknown_element_in_the_model_alone(family):
    model = make_potential(family).model
    with pytest.raises(ValueError, match=r"unknown element.*\[92\]"):
        model(from_atoms(ase.Atoms("U"), TEST_CUTOFF))


def test_nan_positions(family, mode):
    potential = potential_in(family, mode)
    graph = from_atoms(water(), TEST_CUTOFF)
    positions = graph.positions.clone()
    positions[1, 2] = float("nan")
    with expect_error(mode, r"positions of atom\(s\) \[1\] are NaN or infinite"):
        potential(graph._replace(positions=positions))


def test_nan_positions_at_graph_construction():
    atoms = water()
    atoms.positions[0, 0] = np.nan
    with pytest.raises(ValueError):
        from_atoms(atoms, TEST_CUTOFF)


def test_infinite_cell(mode):
    potential = potential_in("schnet", mode)
    graph = from_atoms(water_box(), TEST_CUTOFF)
    cell = graph.cell.clone()
    cell[0, 1, 1] = float("inf")
    with expect_error(mode, r"cell of system\(s\) \[0\]"):
        potential(graph._replace(cell=cell), compute_stress=True)


def test_two_atoms_at_the_same_position(family, mode):
    potential = potential_in(family, mode)
    atoms = ase.Atoms("OHH", positions=[[0.0, 0.0, 0.0], [0.0, 0.8, 0.6], [0.0, 0.8, 0.6]])
    with expect_error(mode, "atoms 1 and 2 .* same position"):
        potential(from_atoms(atoms, TEST_CUTOFF))


def test_atom_on_a_periodic_image_of_another(mode):
    potential = potential_in("schnet", mode)
    atoms = ase.Atoms("HH", positions=[[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]], cell=np.eye(3) * 3.0, pbc=True)
    with expect_error(mode, "same position"):
        potential(from_atoms(atoms, TEST_CUTOFF))


def test_very_close_atoms_are_finite(family):
    """Closer than any physical distance, but not coincident: a finite (if meaningless) result."""
    potential = make_potential(family, torch.float64)
    atoms = ase.Atoms("HH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 1e-4]])
    result = testing.predict(potential, atoms, compute_stress=False)
    assert np.isfinite(result["energy"]) and np.isfinite(result["forces"]).all()


def test_validation_can_be_switched_off_only_explicitly():
    """The switch that ahead-of-time compilation uses: off, bad input is not an error (the
    caller must check); back on, it is again."""
    potential = make_potential("schnet", torch.float64)
    graph = from_atoms(water(), TEST_CUTOFF)
    with torch.no_grad():
        graph.positions[0, 0] = float("nan")  # after the neighbour list, which checks too
    with pytest.raises(ValueError, match="NaN"):
        potential(graph)
    potential.set_input_validation(False)
    assert all(not m.validate for m in potential.modules() if hasattr(m, "validate"))
    assert not torch.isfinite(potential(graph)["energy"]).all()
    potential.set_input_validation(True)
    with expect_error("scripted", "NaN"):
        torch.jit.script(potential)(graph)


def test_species_index_without_validation_marks_unknown_elements():
    from mlff.nn.embedding import SpeciesIndex

    index = SpeciesIndex([1, 8])
    index.validate = False
    assert index(torch.tensor([8, 1, 79])).tolist() == [1, 0, -1]
