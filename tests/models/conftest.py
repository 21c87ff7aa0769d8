"""Fixtures of the model tests: every registered family, small, wrapped in a Potential.

A family joins these tests by being registered in ``mlff.models``; give it small
hyperparameters in ``SMALL`` below (otherwise its defaults are used, with a warning).
"""

import warnings

import pytest
import torch

import mlff
from mlff import models
from tests.structures import REFERENCE_ENERGIES, SPECIES, TEST_CUTOFF

#: Small hyperparameters per family, so that the whole directory runs in minutes.
SMALL = {
    "schnet": dict(n_features=16, n_filters=16, n_interactions=2, n_basis=8),
    "painn": dict(n_features=16, n_interactions=2, n_basis=8),
    "local_frame": dict(n_features=16, n_interactions=2, n_basis=8),
    # as TINY in test_equivariant_models.py
    "nequip": dict(n_channels=4, l_max=2, n_interactions=2, radial_hidden=(8,), readout_hidden=4, avg_num_neighbors=10.0),
    "mace": dict(
        n_channels=4, l_max=2, hidden_l_max=1, correlation=3, radial_hidden=(8,), readout_hidden=4, avg_num_neighbors=10.0
    ),
}

DTYPES = [torch.float32, torch.float64]


def make_potential(family: str, dtype: torch.dtype = torch.float64, seed: int = 0, **overrides) -> mlff.Potential:
    """A small, randomly initialised potential of ``family`` in ``dtype`` (eval mode)."""
    if family not in SMALL:
        warnings.warn(f"no small hyperparameters for model family {family!r} in tests/models/conftest.py; using defaults")
    settings = dict(species=SPECIES, cutoff=TEST_CUTOFF, **SMALL.get(family, {}))
    settings.update(overrides)
    torch.manual_seed(seed)
    model = models.build(family, **settings)
    return mlff.Potential(model, REFERENCE_ENERGIES).to(dtype).eval()


@pytest.fixture(params=models.available())
def family(request) -> str:
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def potential(family, dtype) -> mlff.Potential:
    return make_potential(family, dtype)


@pytest.fixture
def potential64(family) -> mlff.Potential:
    return make_potential(family, torch.float64)
