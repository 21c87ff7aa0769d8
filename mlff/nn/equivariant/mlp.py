"""Bias-free MLPs of invariant features: radial networks (an edge's radial features to its
tensor-product weights) and scalar readouts."""

from typing import Any, Dict, Sequence

import torch
from torch import Tensor

from mlff.nn.equivariant.activations import NormalizedSiLU
from mlff.nn.mlp import mlp


class NormalizedLinear(torch.nn.Module):
    """Bias-free dense layer ``y = x W^T / sqrt(n_in)`` with W ~ N(0, 1): e3nn's parameterization.

    The function at initialisation is that of a ``torch.nn.Linear`` with N(0, 1/n_in) weights;
    the difference is in training. Adam moves every weight by about the learning rate whatever
    its scale, so weights of order 1 behind a fixed 1/sqrt(n_in) change the output sqrt(n_in)
    times less per step than weights of order 1/sqrt(n_in): the radial networks and readouts then
    learn at the pace of the e3nn linear maps around them (and of mace-torch's and NequIP's
    ``FullyConnectedNet``). With the other parameterization, mlff's MACE needed about a third
    more epochs than mace-torch to reach the same validation error.

    Parameters
    ----------
    n_in, n_out : int

    Shapes: ``forward(x (..., n_in)) -> (..., n_out)``; ``weight`` is (n_out, n_in).

    State dicts of version 1 (mlff before this class: a ``torch.nn.Linear`` holding the
    effective weight ``W / sqrt(n_in)``) are converted on loading, so earlier checkpoints load
    to the same function. A state dict without version metadata (a plain ``dict`` built from
    one, which drops the ``_metadata`` attribute) is taken as current: every ``state_dict()``
    that torch wrote, old or new, carries its version.
    """

    _version = 2

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.in_features = n_in
        self.out_features = n_out
        self.gain = n_in**-0.5
        self.weight = torch.nn.Parameter(torch.randn(n_out, n_in))

    def effective_weight(self) -> Tensor:
        """``W / sqrt(n_in)``, (n_out, n_in)."""
        return self.weight * self.gain

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.linear(x, self.effective_weight())

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str, local_metadata: Dict[str, Any], *args: Any) -> None:
        version = local_metadata.get("version")
        key = prefix + "weight"
        if version is not None and version < 2 and key in state_dict:
            state_dict[key] = state_dict[key] / self.gain  # stored effective weight -> W
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def scalar_mlp(sizes: Sequence[int]) -> torch.nn.Sequential:
    """Bias-free MLP of :class:`NormalizedLinear` layers with normalized SiLU between them.

    Without biases and with ``silu(0) = 0`` the MLP maps 0 to exactly 0: radial features that
    vanish at the cutoff (basis times envelope) give tensor-product weights that vanish there
    too, with the envelope's smoothness. SiLU is rescaled to unit second moment (as in e3nn's
    ``FullyConnectedNet``), so outputs start at unit scale.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, hidden, ..., n_out]``; at least two entries.

    Returns
    -------
    torch.nn.Sequential
        Input (n, n_in), output (n, n_out).
    """
    return mlp(sizes, NormalizedSiLU(), linear=NormalizedLinear)
