"""Normalized activations: SiLU and tanh rescaled to unit second moment under N(0, 1) inputs
(e3nn's ``normalize2mom``), so stacked layers keep features at unit scale at init.

SiLU is used on even scalars, tanh (an odd function) on odd scalars, which keeps parity.
Both vanish exactly at zero, which zero-message atoms rely on (see :mod:`mlff.nn.activation`).
"""

import functools

import torch
from e3nn.math import normalize2mom
from torch import Tensor


@functools.lru_cache(maxsize=None)
def second_moment_scale(name: str) -> float:
    """``1 / sqrt(E[f(z)^2])``, z ~ N(0, 1), for ``name`` in {"silu", "tanh"}."""
    functions = {"silu": torch.nn.functional.silu, "tanh": torch.tanh}
    if name not in functions:
        raise ValueError(f"second_moment_scale: unknown activation {name!r}; known: {sorted(functions)}")
    return float(normalize2mom(functions[name], dtype=torch.float64).cst)


class NormalizedSiLU(torch.nn.Module):
    """``silu(x) * c`` with c such that the output has unit second moment for N(0, 1) input."""

    def __init__(self):
        super().__init__()
        self.scale = second_moment_scale("silu")

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.silu(x) * self.scale
