"""Potential: reference energies, scale/shift, outputs, dtypes, autograd modes."""

import ase
import numpy as np
import pytest
import torch

import mlff
from mlff import testing
from mlff.graph import collate
from tests.models.conftest import make_potential
from tests.structures import REFERENCE_ENERGIES, SPECIES, TEST_CUTOFF, ethanol, silicon, water, water_box


def test_exported_at_package_level():
    assert mlff.Potential is mlff.potential.Potential


def test_attributes_follow_the_model(potential64):
    assert potential64.cutoff == TEST_CUTOFF
    assert potential64.species == SPECIES


def test_energy_is_scaled_shifted_and_referenced(potential64):
    atoms = ethanol()
    graph = testing.graph_of(potential64, atoms)
    raw = potential64.model(graph)["node_energy"].detach()
    potential64.set_scale_shift(2.5, -0.25)
    outputs = potential64(graph)
    e0 = torch.tensor([REFERENCE_ENERGIES[z] for z in atoms.numbers], dtype=torch.float64)
    torch.testing.assert_close(outputs["node_energy"].detach(), 2.5 * raw - 0.25 + e0)
    torch.testing.assert_close(outputs["energy"].detach(), outputs["node_energy"].detach().sum().view(1))


def test_scale_multiplies_forces(potential64):
    atoms = ethanol()
    forces = testing.predict(potential64, atoms)["forces"]
    potential64.set_scale_shift(3.0, 1.0)
    np.testing.assert_allclose(testing.predict(potential64, atoms)["forces"], 3.0 * forces, rtol=1e-12, atol=1e-15)


def test_isolated_atom_with_shift_gets_reference_plus_shift(potential64):
    potential64.set_scale_shift(2.0, 0.125)
    testing.assert_isolated_atom_energy(potential64, 8, REFERENCE_ENERGIES[8] + 0.125)


def test_reference_energies_must_be_model_species(potential64):
    with pytest.raises(ValueError, match=r"\[79\]"):
        potential64.set_reference_energies({79: -1.0})
    potential64.set_reference_energies({1: -3.0})  # the others become 0
    assert potential64.reference_energies.tolist() == [-3.0, 0.0, 0.0, 0.0, 0.0]


def test_stress_is_zero_without_a_cell_but_virial_is_not(potential64):
    outputs = testing.predict(potential64, water(), compute_stress=True)
    assert np.all(outputs["stress"] == 0.0)
    assert np.abs(outputs["virial"]).max() > 0.0
    np.testing.assert_allclose(outputs["virial"], outputs["virial"].T, atol=1e-14)


def test_virial_is_minus_stress_times_volume(potential64):
    atoms = silicon()
    outputs = testing.predict(potential64, atoms, compute_stress=True)
    np.testing.assert_allclose(outputs["virial"], -outputs["stress"] * atoms.get_volume(), rtol=1e-12)


def test_batch_of_open_and_periodic_systems(potential64):
    systems = [water(), silicon()]
    outputs = potential64(collate([testing.graph_of(potential64, a) for a in systems]), compute_stress=True)
    assert outputs["stress"].shape == (2, 3, 3) and outputs["virial"].shape == (2, 3, 3)
    assert torch.all(outputs["stress"][0] == 0.0)
    expected = testing.predict(potential64, systems[1], compute_stress=True)["stress"]
    np.testing.assert_allclose(outputs["stress"][1].detach().numpy(), expected, rtol=1e-10, atol=1e-14)


def test_requested_outputs_only(potential64):
    graph = testing.graph_of(potential64, ethanol())
    assert sorted(potential64(graph, compute_forces=False)) == ["energy", "node_energy"]
    assert sorted(potential64(graph)) == ["energy", "forces", "node_energy"]
    assert sorted(potential64(graph, compute_forces=False, compute_stress=True)) == [
        "energy",
        "node_energy",
        "stress",
        "virial",
    ]


def test_inputs_are_cast_to_the_potential_dtype():
    potential = make_potential("schnet", torch.float64)
    graph32 = testing.graph_of(make_potential("schnet", torch.float32), water_box())
    outputs = potential(graph32, compute_stress=True)
    assert all(value.dtype == torch.float64 for value in outputs.values())
    potential32 = make_potential("schnet", torch.float32)
    graph64 = testing.graph_of(potential, water_box())
    assert potential32(graph64)["forces"].dtype == torch.float32


def test_forces_under_no_grad(potential64):
    graph = testing.graph_of(potential64, ethanol())
    expected = potential64(graph)["forces"]
    with torch.no_grad():
        forces = potential64(graph)["forces"]
        assert not torch.is_grad_enabled()
    torch.testing.assert_close(forces, expected)
    scripted = torch.jit.script(potential64)
    with torch.no_grad():
        torch.testing.assert_close(scripted(graph)["forces"], expected)
        assert not torch.is_grad_enabled()


def test_input_positions_are_not_modified(potential64):
    graph = testing.graph_of(potential64, ethanol())
    before = graph.positions.clone()
    potential64(graph, compute_stress=True)
    assert not graph.positions.requires_grad
    assert torch.equal(graph.positions, before)


def test_training_mode_keeps_the_graph_for_force_losses(potential64):
    potential64.train()
    graph = testing.graph_of(potential64, water_box())
    outputs = potential64(graph, compute_stress=True)
    loss = outputs["forces"].pow(2).sum() + outputs["stress"].pow(2).sum()
    loss.backward()
    gradients = [p.grad for p in potential64.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)
    assert any(float(g.abs().max()) > 0.0 for g in gradients)


def test_second_derivatives_when_positions_require_grad(potential64):
    atoms = ase.Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.2, 0.1, 0.95]])
    graph = testing.graph_of(potential64, atoms)
    positions = graph.positions.clone().requires_grad_(True)
    forces = potential64(graph._replace(positions=positions))["forces"]
    (hessian_row,) = torch.autograd.grad(forces[0, 2], positions)
    assert torch.isfinite(hessian_row).all() and hessian_row.abs().max() > 0.0
