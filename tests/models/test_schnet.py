"""SchNet runs its filter network once per pair of a full list: the same energy and forces as
sending a message along every edge."""

import pytest
import torch

from mlff.graph import from_atoms
from mlff.models.base import edge_geometry
from mlff.neighbors import one_per_pair
from mlff.nn.scatter import scatter_sum
from tests.models.conftest import make_potential
from tests.structures import TEST_CUTOFF, ethanol, tiny_hydrogen_cell, water_box


def energy_along_every_edge(model, graph):
    """SchNet's energy with one message per directed edge (no pairing)."""
    _, distances = edge_geometry(graph)
    radial, envelope = model.radial(distances), model.envelope(distances)
    embedded = model.embedding(model.species_index(graph.atomic_numbers))
    features = embedded
    for interaction in model.interactions:
        features = interaction(features, radial, envelope, graph.edge_index[0], graph.edge_index[1], False)
    node_energy = model.readout(features, embedded)
    return scatter_sum(node_energy, graph.batch, int(graph.cell.shape[0]))


def energy_and_forces(energy_of, graph):
    positions = graph.positions.clone().requires_grad_(True)
    energy = energy_of(graph._replace(positions=positions)).sum()
    (gradient,) = torch.autograd.grad(energy, positions)
    return energy.detach(), -gradient


@pytest.mark.parametrize("structure", [ethanol, water_box, tiny_hydrogen_cell])
def test_pairs_give_the_energy_and_forces_of_every_edge(structure):
    model = make_potential("schnet", torch.float64).model
    graph = from_atoms(structure(), TEST_CUTOFF)
    assert 2 * one_per_pair(graph.edge_index, graph.cell_shifts).numel() == graph.edge_index.shape[1]
    paired = energy_and_forces(lambda g: model(g)["energy"], graph)
    reference = energy_and_forces(lambda g: energy_along_every_edge(model, g), graph)
    torch.testing.assert_close(paired, reference, rtol=1e-10, atol=1e-10)


def test_a_one_directional_list_falls_back_to_every_edge():
    model = make_potential("schnet", torch.float64).model
    graph = from_atoms(ethanol(), TEST_CUTOFF)
    keep = one_per_pair(graph.edge_index, graph.cell_shifts)
    half = graph._replace(edge_index=graph.edge_index[:, keep], cell_shifts=graph.cell_shifts[keep])
    torch.testing.assert_close(model(half)["energy"], energy_along_every_edge(model, half), rtol=1e-12, atol=1e-12)
