"""Gated nonlinearity (Weiler et al. 2018), the equivariant nonlinearity of NequIP.

Scalars pass through an activation; every other irrep is multiplied by its own activated
scalar gate. Written here rather than taken from ``e3nn.nn.Gate`` because that one scripts
only through ``e3nn.util.jit.compile`` (tracing), and ``torch.jit.script(model)`` must work.
"""

from typing import List, Tuple

import torch
from e3nn import o3
from torch import Tensor

from mlff.nn.equivariant.activations import second_moment_scale


def _scalar_segments(irreps: o3.Irreps, offset: int) -> List[Tuple[int, int, bool]]:
    """(start, end, odd) column ranges of the scalar blocks of ``irreps`` placed at ``offset``."""
    segments: List[Tuple[int, int, bool]] = []
    for mul, ir in irreps:
        if ir.l != 0:
            raise ValueError(f"Gate: expected scalars only, got {irreps}")
        segments.append((offset, offset + mul, ir.p == -1))
        offset += mul
    return segments


class Gate(torch.nn.Module):
    """``[scalars | gates | gated] -> [act(scalars) | act(gates) * gated]``.

    Even scalars (and gates) go through normalized SiLU, odd ones through normalized tanh.
    Output irreps ``irreps_scalars + irreps_gated``, the parity of a gated irrep flipped where
    its gate is odd.

    Parameters
    ----------
    irreps_scalars : o3.Irreps
        Scalars (l = 0) that are activated and passed on.
    irreps_gates : o3.Irreps
        Scalars, one per gated irrep (``irreps_gates.num_irreps == irreps_gated.num_irreps``).
    irreps_gated : o3.Irreps
        Irreps multiplied by their gate, in order.

    Shapes: ``forward(x (n, irreps_in.dim)) -> (n, irreps_out.dim)``.
    """

    scalar_segments: List[Tuple[int, int, bool]]
    gate_segments: List[Tuple[int, int, bool]]

    def __init__(self, irreps_scalars: o3.Irreps, irreps_gates: o3.Irreps, irreps_gated: o3.Irreps):
        super().__init__()
        self.irreps_scalars = o3.Irreps(irreps_scalars)
        self.irreps_gates = o3.Irreps(irreps_gates)
        self.irreps_gated = o3.Irreps(irreps_gated)
        if self.irreps_gates.num_irreps != self.irreps_gated.num_irreps:
            raise ValueError(
                f"Gate: {self.irreps_gates.num_irreps} gates for {self.irreps_gated.num_irreps} gated irreps"
            )
        self.irreps_in = self.irreps_scalars + self.irreps_gates + self.irreps_gated
        # An odd gate flips the parity of what it multiplies.
        gate_parities = [ir.p for mul, ir in self.irreps_gates for _ in range(mul)]
        gated_out = []
        for mul, ir in self.irreps_gated:
            for _ in range(mul):
                gated_out.append((1, (ir.l, ir.p * gate_parities[len(gated_out)])))
        self.irreps_out = self.irreps_scalars + o3.Irreps(gated_out).simplify()
        n_scalars = self.irreps_scalars.dim
        n_gates = self.irreps_gates.dim
        self.scalar_segments = _scalar_segments(self.irreps_scalars, 0)
        self.gate_segments = _scalar_segments(self.irreps_gates, n_scalars)
        self.gated_start = n_scalars + n_gates
        # Column of the gate of every gated component, relative to the first gate.
        gate_of_component = []
        gate = 0
        for mul, ir in self.irreps_gated:
            for _ in range(mul):
                gate_of_component += [gate] * ir.dim
                gate += 1
        self.register_buffer("gate_of_component", torch.tensor(gate_of_component, dtype=torch.long), persistent=False)
        self.silu_scale = second_moment_scale("silu")
        self.tanh_scale = second_moment_scale("tanh")

    def _activate(self, x: Tensor, segments: List[Tuple[int, int, bool]]) -> List[Tensor]:
        parts: List[Tensor] = []
        for start, end, odd in segments:
            if odd:
                parts.append(torch.tanh(x[:, start:end]) * self.tanh_scale)
            else:
                parts.append(torch.nn.functional.silu(x[:, start:end]) * self.silu_scale)
        return parts

    def forward(self, x: Tensor) -> Tensor:
        outputs = self._activate(x, self.scalar_segments)
        if len(self.gate_segments) > 0:
            gates = torch.cat(self._activate(x, self.gate_segments), dim=1)  # (n, n_gates)
            gated = x[:, self.gated_start :]
            outputs.append(gated * gates.index_select(1, self.gate_of_component))
        return torch.cat(outputs, dim=1)
