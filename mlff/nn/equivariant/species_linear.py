"""Equivariant linear maps whose weights depend on the species of the atom.

This is NequIP's and MACE's species-dependent self-connection (there written as a tensor
product of the features with a one-hot species vector), computed as one ``o3.Linear`` per
species group instead of a tensor product with the one-hot vector, which does n_species times
the work.
"""

import torch
from e3nn import o3
from torch import Tensor

from mlff.nn.equivariant.species import SpeciesPartition


class SpeciesLinear(torch.nn.Module):
    """``y = W[species] x``: an equivariant linear map (no bias) per species.

    Parameters
    ----------
    irreps_in, irreps_out : o3.Irreps
        Input and output irreps; only paths between equal irreps exist (as in ``o3.Linear``,
        with its normalization: unit-variance inputs give unit-variance outputs at init).
    n_species : int
        Number of species; weights have shape (n_species, weight_numel).

    Shapes: ``forward(x (n_atoms, irreps_in.dim), partition) -> (n_atoms, irreps_out.dim)``.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, n_species: int):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.dim_out = self.irreps_out.dim
        self.linear = o3.Linear(self.irreps_in, self.irreps_out, internal_weights=False, shared_weights=True)
        self.weight = torch.nn.Parameter(torch.randn(n_species, self.linear.weight_numel))

    def forward(self, x: Tensor, partition: SpeciesPartition) -> Tensor:
        outputs = [x.new_zeros(0, self.dim_out)]  # keeps cat defined for an empty graph
        for s, index in zip(partition.species, partition.indices):
            outputs.append(self.linear(x.index_select(0, index), self.weight[s]))
        return torch.cat(outputs).index_select(0, partition.inverse)
