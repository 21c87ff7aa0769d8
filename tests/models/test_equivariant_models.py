"""NequIP and MACE: the checks their design relies on, built directly (tiny hyperparameters).

The shared suite (test_symmetry, test_derivatives, test_consistency) covers every registered
family; these tests stay with the two spherical-tensor models: exact equivariance in float64
of a model built in float32 (3j symbols and coupling bases re-derived on ``.double()``),
derivatives, scripting, the isolated-atom subtraction of NequIP, training on forces (double
backward) and layer-by-layer evaluation.
"""

import dataclasses

import pytest
import torch

import mlff
from mlff import testing
from mlff.graph.atomic_graph import collate
from mlff.models.config import make_config
from mlff.models.mace import MACE, MACEConfig
from mlff.models.nequip import NequIP, NequIPConfig
from mlff.nn.equivariant.species import partition_by_species
from tests.structures import REFERENCE_ENERGIES, SPECIES, TEST_CUTOFF, ethanol, water, water_box

TINY = {
    "nequip": (
        NequIP,
        NequIPConfig,
        dict(n_channels=4, l_max=2, n_interactions=2, radial_hidden=(8,), readout_hidden=4, avg_num_neighbors=10.0),
    ),
    "mace": (
        MACE,
        MACEConfig,
        dict(
            n_channels=4,
            l_max=2,
            hidden_l_max=1,
            correlation=3,
            radial_hidden=(8,),
            readout_hidden=4,
            avg_num_neighbors=10.0,
        ),
    ),
}


def make(name: str, dtype: torch.dtype, seed: int = 0, **overrides) -> mlff.Potential:
    """Tiny potential of ``name``, built in float32 and cast to ``dtype``, in eval mode."""
    model_type, config_type, settings = TINY[name]
    torch.manual_seed(seed)
    config = config_type(species=SPECIES, cutoff=TEST_CUTOFF, **{**settings, **overrides})
    return mlff.Potential(model_type(config), REFERENCE_ENERGIES).to(dtype).eval()


@pytest.fixture(params=sorted(TINY))
def name(request) -> str:
    return request.param


def test_symmetries_exact_in_float64(name):
    potential = make(name, torch.float64)
    for atoms in (ethanol(), water_box()):
        testing.assert_rotation_equivariant(potential, atoms, seed=21)
        testing.assert_reflection_equivariant(potential, atoms, seed=22)
        testing.assert_translation_invariant(potential, atoms, seed=23)
        testing.assert_permutation_equivariant(potential, atoms, seed=24)


def test_forces_and_stress_are_derivatives(name):
    potential = make(name, torch.float64)
    testing.assert_forces_match_finite_difference(potential, ethanol())
    testing.assert_stress_matches_strain_derivative(potential, water_box())
    testing.assert_smooth_at_cutoff(potential, water(), 8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_scripted_batched_isolated(name, dtype):
    potential = make(name, dtype)
    testing.assert_scripted_matches_eager(potential, [ethanol(), water()])
    testing.assert_batch_matches_single(potential, [water(), ethanol()])
    testing.assert_isolated_atom_energy(potential, 8, REFERENCE_ENERGIES[8])


def test_training_on_forces_reaches_every_parameter(name):
    """Forces keep their graph in training mode: a force loss has gradients for all weights."""
    potential = make(name, torch.float64).train()
    graph = testing.graph_of(potential, water_box())
    for module in (potential, torch.jit.script(potential)):
        module.zero_grad()
        outputs = module(graph)
        loss = (outputs["forces"] ** 2).sum() + outputs["energy"].sum() ** 2
        loss.backward()
        for parameter_name, parameter in potential.named_parameters():
            assert parameter.grad is not None, parameter_name
            assert torch.isfinite(parameter.grad).all(), parameter_name
        assert any(float(p.grad.abs().max()) > 0 for p in potential.parameters())


def test_layers_run_one_at_a_time(name):
    """``model.interactions`` is the whole message-passing sequence (for domain decomposition)."""
    potential = make(name, torch.float64)
    model = potential.model
    assert isinstance(model.interactions, torch.nn.ModuleList)
    assert len(model.interactions) == 2
    graph = testing.graph_of(potential, water_box())
    species = model.species_index(graph.atomic_numbers)
    partition = partition_by_species(species, model.n_species)
    vectors = mlff.neighbors.edge_vectors(graph.positions, graph.cell, graph.edge_index, graph.cell_shifts, graph.batch)
    radial, sh = model.edge_embedding(vectors)
    h = model.embedding(species)
    for layer in model.interactions:
        out = layer(h, sh, radial, graph.edge_index, partition)
        h = out[0] if isinstance(out, tuple) else out
    assert h.shape[0] == len(species)
    assert torch.isfinite(h).all()


def test_species_absent_from_a_batch_cost_nothing_and_change_nothing(name):
    """Atoms are grouped by species; a batch with fewer species gives the same numbers."""
    potential = make(name, torch.float64)
    single = potential(testing.graph_of(potential, water()))["energy"].detach()
    graphs = [testing.graph_of(potential, water()), testing.graph_of(potential, ethanol())]
    batched = potential(collate(graphs))["energy"].detach()
    testing.assert_close(batched[:1].numpy(), single.numpy(), testing.TOLERANCES[torch.float64], "energy")


def test_config_is_typed_and_strict(name):
    _, config_type, _ = TINY[name]
    with pytest.raises(ValueError, match="unknown key"):
        make_config(config_type, {"n_chanels": 8})
    with pytest.raises(ValueError):
        config_type(n_channels=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config_type().n_channels = 3  # type: ignore[misc]


def test_default_hyperparameters_match_the_papers():
    nequip = NequIPConfig()
    assert (nequip.n_channels, nequip.l_max, nequip.n_interactions, nequip.n_basis, nequip.envelope_exponent) == (
        32,
        2,
        4,
        8,
        6,
    )
    mace = MACEConfig()
    assert (mace.n_channels, mace.hidden_l_max, mace.l_max, mace.correlation, mace.n_interactions) == (128, 1, 3, 3, 2)
    assert mace.radial_hidden == (64, 64, 64) and mace.envelope_exponent == 5
