"""Shifted softplus activations: ``ssp(x) = softplus(x) - log 2 = log(exp(x) / 2 + 1/2)`` (SchNet).

Two implementations of the same function, for two jobs:

* :class:`ShiftedSoftplus` is one fused softplus and a subtraction: fast, for the many rows of
  edge filters and readouts. ``ssp(0)`` is zero only up to rounding.
* :class:`ZeroPreservingShiftedSoftplus` gives ``ssp(0) == 0`` bit for bit. Models need that
  in their interaction updates: an atom without neighbours receives an all-zero message, its
  update must then be exactly zero, so that its energy is exactly its reference energy (see
  :mod:`mlff.nn.readout`). It costs a few elementwise passes, on atoms only.

``torch.nn.SiLU`` (``0 * sigmoid(0)``) already vanishes exactly at zero.
"""

import math

import torch
from torch import Tensor

#: Above this argument, ``log1p(expm1(x) / 2)`` equals ``x - log 2`` to double precision (the
#: neglected term ``log1p(exp(-x))`` is below 1e-17); the branch also keeps expm1 from overflowing.
_LINEAR_ABOVE = 40.0


class ShiftedSoftplus(torch.nn.Module):
    """``softplus(x) - log 2``, any shape in, same shape out (fast; zero at 0 up to rounding)."""

    def __init__(self):
        super().__init__()
        self.log_2 = math.log(2.0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.softplus(x) - self.log_2


class ZeroPreservingShiftedSoftplus(torch.nn.Module):
    """``softplus(x) - log 2`` evaluated as ``log1p(expm1(x) / 2)``, so that ``f(0)`` is exactly 0."""

    def __init__(self):
        super().__init__()
        self.linear_above = _LINEAR_ABOVE
        self.log_2 = math.log(2.0)

    def forward(self, x: Tensor) -> Tensor:
        small = torch.clamp(x, max=self.linear_above)
        exact_at_zero = torch.log1p(0.5 * torch.expm1(small))
        return torch.where(x > self.linear_above, x - self.log_2, exact_at_zero)
