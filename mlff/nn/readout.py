"""Energy readout relative to the isolated atom.

An atom with no neighbour within the cutoff must have exactly zero interaction energy, so that
its total energy is exactly its reference energy E0. Models guarantee this in two steps:

1. their interaction updates are exactly zero when the aggregated message is zero (no biases
   after aggregation, activations with ``f(0) == 0``), so such an atom keeps the features it
   would have alone (for most models: its species embedding);
2. the readout reports ``net(h) - net(h_isolated)``, evaluated on tensors of the same shape, so
   the two terms are bitwise equal for an isolated atom and cancel exactly.

The subtraction is smooth: as the last neighbour leaves the cutoff, the envelope takes ``h`` to
``h_isolated`` continuously, and the energy to zero.
"""

from typing import Sequence

import torch
from torch import Tensor

from mlff.nn.mlp import mlp


class EnergyReadout(torch.nn.Module):
    """Per-atom energy ``net(h) - net(h_isolated)`` with an MLP ``net`` (biases allowed).

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes of ``net``, input features first; the last must be 1.
    activation : torch.nn.Module
        Activation between the layers.
    """

    def __init__(self, sizes: Sequence[int], activation: torch.nn.Module):
        super().__init__()
        if sizes[-1] != 1:
            raise ValueError(f"EnergyReadout: the last layer must have size 1, got {list(sizes)}")
        self.net = mlp(sizes, activation)

    def forward(self, features: Tensor, isolated_features: Tensor) -> Tensor:
        """Energies (n_atoms,) in eV from features and isolated-atom features, both (n_atoms, F)."""
        return (self.net(features) - self.net(isolated_features)).squeeze(-1)
