"""Blocks that make an isolated atom's energy exactly zero."""

import math

import pytest
import torch

from mlff.nn.activation import ShiftedSoftplus, ZeroPreservingShiftedSoftplus
from mlff.nn.mlp import mlp
from mlff.nn.readout import EnergyReadout


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", [ShiftedSoftplus, ZeroPreservingShiftedSoftplus])
def test_shifted_softplus(dtype, activation):
    x = torch.tensor([-200.0, -3.0, -1e-6, 0.0, 1e-6, 2.0, 39.0, 41.0, 1e5], dtype=dtype, requires_grad=True)
    y = activation()(x)
    expected = torch.nn.functional.softplus(x.double()) - math.log(2.0)
    torch.testing.assert_close(y.double(), expected, rtol=1e-6, atol=1e-6)
    if activation is ZeroPreservingShiftedSoftplus:
        assert y[3].item() == 0.0  # exactly, not up to rounding
    (gradient,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(gradient.double(), torch.sigmoid(x.double()), rtol=1e-6, atol=1e-6)


def test_bias_free_mlp_maps_zero_to_zero():
    torch.manual_seed(0)
    for activation in (torch.nn.SiLU(), ZeroPreservingShiftedSoftplus()):
        network = mlp([7, 5, 3], activation, bias=False)
        assert torch.equal(network(torch.zeros(4, 7)), torch.zeros(4, 3))


def test_energy_readout_vanishes_for_isolated_features():
    torch.manual_seed(0)
    readout = EnergyReadout([6, 3, 1], torch.nn.SiLU())
    features = torch.randn(10, 6)
    assert torch.equal(readout(features, features), torch.zeros(10))
    assert readout(features, torch.randn(10, 6)).shape == (10,)


def test_mlp_needs_two_sizes():
    with pytest.raises(ValueError):
        mlp([3], torch.nn.SiLU())
