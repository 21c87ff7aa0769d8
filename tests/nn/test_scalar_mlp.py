"""The radial / readout MLP: e3nn's parameterization, and earlier checkpoints still load."""

import pytest
import torch

from mlff.nn.equivariant.mlp import NormalizedLinear, scalar_mlp


def test_starts_at_unit_scale_and_maps_zero_to_zero():
    torch.manual_seed(0)
    network = scalar_mlp([8, 64, 64, 32])
    x = torch.randn(4000, 8)
    assert 0.7 < network(x).pow(2).mean().sqrt() < 1.4
    assert torch.equal(network(torch.zeros(3, 8)), torch.zeros(3, 32))


def test_an_adam_step_moves_the_output_as_an_e3nn_layer_does():
    """Weights of order 1 behind a fixed 1/sqrt(n_in): a step of size lr on every weight moves
    the output by about lr, not lr * sqrt(n_in) as with N(0, 1/n_in) weights."""
    torch.manual_seed(0)
    n_in, lr = 256, 1e-3
    layer = NormalizedLinear(n_in, 1)
    x = torch.randn(1, n_in)
    before = layer(x).item()
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    layer(x).sum().backward()
    optimizer.step()  # Adam's first step moves every weight by lr along its gradient's sign
    change = layer(x).item() - before
    expected = lr * x.abs().sum().item() / n_in**0.5
    assert change < 0 and abs(change) == pytest.approx(expected, rel=1e-3)


def test_state_dicts_of_torch_linear_layers_load_to_the_same_function():
    """Checkpoints written before NormalizedLinear hold torch.nn.Linear effective weights."""
    torch.manual_seed(1)
    old = torch.nn.Sequential(torch.nn.Linear(8, 16, bias=False), torch.nn.SiLU(), torch.nn.Linear(16, 4, bias=False))
    new = torch.nn.Sequential(NormalizedLinear(8, 16), torch.nn.SiLU(), NormalizedLinear(16, 4))
    new.load_state_dict(old.state_dict())
    x = torch.randn(10, 8)
    torch.testing.assert_close(new(x), old(x))
    # and a new-format state dict round-trips unchanged
    again = torch.nn.Sequential(NormalizedLinear(8, 16), torch.nn.SiLU(), NormalizedLinear(16, 4))
    again.load_state_dict(new.state_dict())
    torch.testing.assert_close(again(x), new(x))
    assert torch.equal(again[0].weight, new[0].weight)
    # a plain dict (no version metadata, as after editing or averaging weights) is the current format
    plain = torch.nn.Sequential(NormalizedLinear(8, 16), torch.nn.SiLU(), NormalizedLinear(16, 4))
    plain.load_state_dict(dict(new.state_dict()))
    assert torch.equal(plain[0].weight, new[0].weight)


def test_scripts():
    network = torch.jit.script(scalar_mlp([3, 5, 2]))
    x = torch.randn(7, 3)
    assert network(x).shape == (7, 2)
