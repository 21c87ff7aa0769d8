"""Cutoff envelopes: smooth functions that take edge contributions to zero at the cutoff."""

import torch
from torch import Tensor


class PolynomialCutoff(torch.nn.Module):
    """Polynomial envelope of Klicpera et al. (DimeNet), degree ``p``.

    ``f(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` with ``x = r / cutoff``
    for r < cutoff and 0 beyond; f, f' and f'' vanish at the cutoff, so energies and forces
    are continuous as atoms cross it. Input (n_edges,) Angstrom; output (n_edges,).
    """

    def __init__(self, cutoff: float = 5.0, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = float(p)

    def forward(self, distances: Tensor) -> Tensor:
        p = self.p
        x = distances / self.cutoff
        envelope = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(x, p + 2.0)
        )
        return envelope * (x < 1.0).to(envelope.dtype)
