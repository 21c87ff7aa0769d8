"""Multilayer perceptrons: the dense networks every model uses on nodes and edges."""

from typing import Callable, List, Optional, Sequence

import torch


def mlp(
    sizes: Sequence[int],
    activation: torch.nn.Module,
    bias: bool = True,
    linear: Optional[Callable[[int, int], torch.nn.Module]] = None,
) -> torch.nn.Sequential:
    """Dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``, ``activation`` between them.

    Parameters
    ----------
    sizes : sequence of int
        Feature sizes, input first; at least two.
    activation : torch.nn.Module
        Applied after every layer but the last (the same stateless module is reused).
    bias : bool
        Whether the dense layers have biases. Without biases and with an activation that is
        zero at zero, the network maps zero to exactly zero.
    linear : callable, optional
        ``linear(n_in, n_out)`` builds each dense layer instead of ``torch.nn.Linear`` (then
        ``bias`` is the layer's own business), e.g. a differently parameterized layer.

    Returns
    -------
    torch.nn.Sequential
        Input (..., sizes[0]), output (..., sizes[-1]).
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp: give at least input and output sizes, got {list(sizes)}")
    layers: List[torch.nn.Module] = []
    for index in range(len(sizes) - 1):
        n_in, n_out = sizes[index], sizes[index + 1]
        layers.append(torch.nn.Linear(n_in, n_out, bias=bias) if linear is None else linear(n_in, n_out))
        if index < len(sizes) - 2:
            layers.append(activation)
    return torch.nn.Sequential(*layers)
