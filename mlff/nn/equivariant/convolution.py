"""Tensor-product convolution: the equivariant message passing of NequIP and MACE.

For each edge (sender i, receiver j) with vector ``r_ij = r_j - r_i`` (the mlff convention),
the receiver j gets

    m_j = scale * sum_i  TP_uvu( h_i , Y(r_ij) ; R(|r_ij|) )

TP_uvu couples channel u of each irrep of the sender's features h_i with the spherical
harmonics Y of the edge direction into every allowed output irrep (``uvu``: channels are not
mixed, one weight per channel and path, see :mod:`mlff.nn.equivariant.tensor_product`); the
weights R come from a radial MLP of the edge's radial features, so each edge gets its own.
``scale`` is 1/avg_num_neighbors (MACE) or 1/sqrt(avg_num_neighbors) (NequIP), keeping sums
over many neighbours at unit scale.
"""

from typing import List

import torch
from e3nn import o3
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mlff.nn.equivariant.mlp import scalar_mlp
from mlff.nn.equivariant.tensor_product import EdgeTensorProduct

#: Edges per chunk of a large system's convolution (see ``EdgeConvolution.chunk_edges``): 2^15,
#: about 600 atoms of liquid water at 5 Angstrom (1 536 atoms, 84 000 edges, make 3 chunks).
CHUNK_EDGES = 32768


class EdgeConvolution(torch.nn.Module):
    """Messages ``TP_uvu(h_sender, Y_edge; R(radial_edge))`` summed at each receiver, scaled.

    Parameters
    ----------
    irreps_node : o3.Irreps
        Node features that are sent (already passed through any linear map).
    irreps_sh : o3.Irreps
        Spherical harmonics of the edge directions.
    irreps_target : o3.Irreps
        Irreps wanted in the output; paths to other irreps are not computed.
    radial_sizes : List[int]
        ``[n_basis, hidden, ...]`` of the radial MLP; its output size (the number of
        tensor-product weights) is appended here.
    scale : float
        Factor applied to the sum of messages (e.g. 1 / avg_num_neighbors).

    Attributes
    ----------
    irreps_out : o3.Irreps
        Irreps of the result, one block per path (see ``uvu_paths``).
    chunk_edges : int
        Above this many edges, an eager module in eval mode that is differentiated (energy and
        forces of a large system) works through the edges in chunks of this size and recomputes
        each chunk in the backward pass (activation checkpointing). Training (``train()`` mode,
        where forces are differentiated again) and TorchScript use one pass over all edges.

    Shapes: ``forward(h (n_atoms, irreps_node.dim), sh (n_edges, irreps_sh.dim),
    radial (n_edges, n_basis), edge_index (2, n_edges)) -> (n_atoms, irreps_out.dim)``.
    """

    def __init__(
        self,
        irreps_node: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_target: o3.Irreps,
        radial_sizes: List[int],
        scale: float,
    ):
        super().__init__()
        self.tensor_product = EdgeTensorProduct(irreps_node, irreps_sh, irreps_target)
        self.irreps_node = self.tensor_product.irreps_node
        self.irreps_sh = self.tensor_product.irreps_sh
        self.irreps_out = self.tensor_product.irreps_out
        self.radial = scalar_mlp(list(radial_sizes) + [self.tensor_product.weight_numel])
        self.n_hidden_modules = len(self.radial) - 1  # the last module is a bias-free linear map
        self.scale = float(scale)
        self.chunk_edges = CHUNK_EDGES

    def forward(self, h: Tensor, sh: Tensor, radial: Tensor, edge_index: Tensor) -> Tensor:
        if (
            not torch.jit.is_scripting()
            and sh.size(0) > self.chunk_edges
            and torch.is_grad_enabled()
            and not self.training
        ):
            return self._chunked(h, sh, radial, edge_index)
        return self._messages(h, sh, radial, edge_index)

    def _messages(self, h: Tensor, sh: Tensor, radial: Tensor, edge_index: Tensor) -> Tensor:
        hidden = radial
        i = 0
        for layer in self.radial:  # all but the last linear map
            if i < self.n_hidden_modules:
                hidden = layer(hidden)
            i += 1
        # the last linear map one path at a time: the gradient of each path's weights goes
        # straight into its own product, never gathered into one (n_edges, weight_numel) array
        blocks = torch.split(self.radial[-1].effective_weight(), self.tensor_product.weight_sizes, dim=0)
        path_weights = [torch.mm(hidden, block.t()) for block in blocks]  # (n_edges, mul_p) each
        return self.tensor_product.forward_paths(h, sh, path_weights, edge_index) * self.scale  # (n_atoms, irreps_out.dim)

    @torch.jit.unused
    def _chunked(self, h: Tensor, sh: Tensor, radial: Tensor, edge_index: Tensor) -> Tensor:
        """:meth:`_messages` over chunks of ``chunk_edges`` edges, each recomputed in the
        backward pass instead of keeping its per-edge tensors (radial network activations and
        weights, gathered features): the memory of a large system's energy and forces then grows
        with its atoms, not with its edges times channels, for about a third more time in the
        convolution. Inputs are split once, so that their gradients are joined in one copy."""
        pieces = zip(
            torch.split(sh, self.chunk_edges),
            torch.split(radial, self.chunk_edges),
            torch.split(edge_index, self.chunk_edges, dim=1),
        )
        total = None
        for sh_piece, radial_piece, edges_piece in pieces:
            part = checkpoint(self._messages, h, sh_piece, radial_piece, edges_piece, use_reentrant=False)
            total = part if total is None else total + part
        return total
