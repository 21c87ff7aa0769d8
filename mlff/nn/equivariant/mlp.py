"""Bias-free MLPs of invariant features: radial networks (an edge's radial features to its
tensor-product weights) and scalar readouts."""

from typing import Sequence

import torch

from mlff.nn.equivariant.activations import NormalizedSiLU
from mlff.nn.mlp import mlp


def scalar_mlp(sizes: Sequence[int]) -> torch.nn.Sequential:
    """Bias-free MLP with normalized SiLU between layers, e3nn-style initialisation.

    Without biases and with ``silu(0) = 0`` the MLP maps 0 to exactly 0: radial features that
    vanish at the cutoff (basis times envelope) give tensor-product weights that vanish there
    too, with the envelope's smoothness. Weights are N(0, 1/fan_in) and SiLU is rescaled to
    unit second moment (as e3nn's ``FullyConnectedNet``), so outputs start at unit scale.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, hidden, ..., n_out]``; at least two entries.

    Returns
    -------
    torch.nn.Sequential
        Input (n, n_in), output (n, n_out).
    """
    network = mlp(sizes, NormalizedSiLU(), bias=False)
    for layer in network:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=layer.in_features**-0.5)
    return network
