"""Radial bases: expansions of edge lengths (Angstrom) into smooth functions."""

import math

import torch
from torch import Tensor


class BesselBasis(torch.nn.Module):
    """Sine Bessel functions ``sqrt(2/c) sin(n pi r / c) / r``, n = 1..n_basis (DimeNet, NequIP).

    Input (n_edges,) distances in Angstrom; output (n_edges, n_basis).
    """

    def __init__(self, n_basis: int = 8, cutoff: float = 5.0, trainable: bool = False):
        super().__init__()
        self.n_basis = n_basis
        self.cutoff = float(cutoff)
        frequencies = math.pi / cutoff * torch.arange(1, n_basis + 1, dtype=torch.get_default_dtype())
        if trainable:
            self.frequencies = torch.nn.Parameter(frequencies)
        else:
            self.register_buffer("frequencies", frequencies)
        self.prefactor = math.sqrt(2.0 / cutoff)

    def forward(self, distances: Tensor) -> Tensor:
        r = distances.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r


class GaussianBasis(torch.nn.Module):
    """Gaussians ``exp(-(r - mu_k)^2 / (2 w^2))`` centred on a uniform grid over [0, cutoff] (SchNet).

    Input (n_edges,) distances in Angstrom; output (n_edges, n_basis).
    """

    def __init__(self, n_basis: int = 50, cutoff: float = 5.0):
        super().__init__()
        self.n_basis = n_basis
        self.cutoff = float(cutoff)
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n_basis, dtype=torch.get_default_dtype()))
        width = cutoff / max(n_basis - 1, 1)
        self.coefficient = -0.5 / width**2

    def forward(self, distances: Tensor) -> Tensor:
        difference = distances.unsqueeze(-1) - self.centers
        return torch.exp(self.coefficient * difference * difference)
