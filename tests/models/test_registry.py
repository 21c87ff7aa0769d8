"""The registry and the model contract every family follows."""

import dataclasses

import pytest
import torch

from mlff import models
from mlff.graph import collate, from_atoms
from mlff.models.config import ModelConfig, config_to_dict, make_config
from tests.models.conftest import SMALL
from tests.structures import SPECIES, TEST_CUTOFF, ethanol, silicon, water


def test_available_lists_the_families():
    names = models.available()
    assert names == sorted(names)
    for name in ("schnet", "painn", "local_frame"):
        assert name in names


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model family 'nope'.*available"):
        models.build("nope")


def test_unknown_key_is_a_clear_error(family):
    with pytest.raises(ValueError, match="unknown key.*'not_a_hyperparameter'"):
        models.build(family, not_a_hyperparameter=1)


@pytest.mark.parametrize("bad", [dict(cutoff=0.0), dict(cutoff=-1.0), dict(species=[]), dict(species=[1, 1]), dict(species=[0])])
def test_invalid_values_are_rejected(family, bad):
    with pytest.raises(ValueError):
        models.build(family, **bad)


def test_configs_are_frozen_values(family):
    config = make_config(models.config_class(family), dict(species=[8, 1], cutoff=3))
    assert isinstance(config, ModelConfig)
    assert config.species == (1, 8) and isinstance(config.cutoff, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.cutoff = 6.0
    rebuilt = make_config(models.config_class(family), config_to_dict(config))
    assert rebuilt == config


def test_defaults_cover_the_periodic_table(family):
    config = models.config_class(family)()
    assert config.species == tuple(range(1, 119))


def small_model(family):
    torch.manual_seed(0)
    return models.build(family, species=SPECIES, cutoff=TEST_CUTOFF, **SMALL.get(family, {}))


def test_model_contract(family):
    model = small_model(family)
    assert model.cutoff == TEST_CUTOFF and isinstance(model.cutoff, float)
    assert model.species == SPECIES and isinstance(model.species, list)
    assert isinstance(model.interactions, torch.nn.ModuleList) and len(model.interactions) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_model_outputs(family, dtype):
    model = small_model(family).to(dtype)
    graph = collate([from_atoms(atoms, TEST_CUTOFF, dtype) for atoms in (ethanol(), silicon())])
    outputs = model(graph)
    n_atoms = graph.positions.size(0)
    assert outputs["node_energy"].shape == (n_atoms,) and outputs["energy"].shape == (2,)
    assert outputs["energy"].dtype == dtype
    assert "forces" not in outputs
    torch.testing.assert_close(outputs["energy"][0], outputs["node_energy"][:9].sum())
    assert torch.isfinite(outputs["node_energy"]).all()


@pytest.mark.slow
def test_default_hyperparameters_build_and_run(family):
    model = models.build(family)
    with torch.no_grad():
        outputs = model(from_atoms(water(), model.cutoff, torch.float32))
    assert torch.isfinite(outputs["energy"]).all()
