"""The ``uvu`` tensor product of a convolution, written for many edges and few irreps.

For every edge e (sender i, receiver j), every irrep block b of the sender's features
(mul_b channels of degree l_b) and every path p = (b, harmonic block s, output degree L):

    y[e, u, p, M] = w[e, u, p] sqrt(2L+1) sum_{m, m'} C^{l_b l_s L}_{m m' M} h[i, b, u, m] Y[e, s, m']

with C the real Wigner 3j symbols of e3nn, and messages summed over the edges into each
receiver: the same numbers, weight layout and output layout as ``e3nn.o3.TensorProduct`` with
``uvu`` instructions, one output block per path, "component" irrep and "element" path
normalization (tests compare the two).

The per-edge tensors (n_edges x components x channels) are the largest of a model and every
pass over them costs, so each path touches its output y once forward and a few times backward:

    x        = h_b[sender(e)]                 (2l_b+1, mul), gathered once per sender block
    Z_p[e]   = Y[e] . C_p                     (2L+1, 2l_b+1), one small matrix product
    y_p[e]   = Z_p[e] @ (w_p[e] * x[e])        weights folded into the smaller factor
    m_p[j]   = sum_{e -> j} y_p[e]

Channels are the fastest axis of per-edge tensors (the batched products then run over long rows)
and the e3nn layout (mul, 2L+1) is restored per atom, after the sum. Per-edge tensors are never
sliced (the gradient of each slice would fill a zero tensor the size of the whole edge array):
the weights are split once, and no weight is expanded to the size of y.
"""

from typing import List, Tuple

import torch
from e3nn import o3
from torch import Tensor

from mlff.nn.equivariant.precision import ExactConstants
from mlff.nn.scatter import scatter_sum


def uvu_paths(
    irreps_node: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps
) -> List[Tuple[int, int, o3.Irrep]]:
    """Paths of the ``uvu`` product of node features with spherical harmonics.

    Every (node block, harmonic block) pair gives one path per irrep of its product that appears
    in ``irreps_target`` (multiplicities of the target are ignored).

    Returns
    -------
    List[Tuple[int, int, o3.Irrep]]
        (node block, harmonic block, output irrep) of every path, node block major.
    """
    targets = {ir for _, ir in o3.Irreps(irreps_target)}
    paths = []
    for i_node, (_, ir_node) in enumerate(o3.Irreps(irreps_node)):
        for i_sh, (_, ir_sh) in enumerate(o3.Irreps(irreps_sh)):
            for ir_out in ir_node * ir_sh:
                if ir_out in targets:
                    paths.append((i_node, i_sh, ir_out))
    return paths


class _Path(ExactConstants):
    """One path: sender block (mul x l) with harmonic block s to output degree L.

    Buffer ``coupling`` (d_sh, (2L+1) (2l+1)): the 3j symbols times sqrt(2L+1), at the rows of
    harmonic block s.
    """

    def __init__(self, irreps_sh: o3.Irreps, i_sh: int, mul: int, l_in: int, l_out: int, index: int):
        super().__init__()
        self.mul = mul
        self.dim_in = 2 * l_in + 1
        self.dim_out = 2 * l_out + 1
        self.index = index
        sh_start = irreps_sh[:i_sh].dim
        coupling = torch.zeros(irreps_sh.dim, self.dim_out, self.dim_in, dtype=torch.float64)
        w3j = o3.wigner_3j(l_in, irreps_sh[i_sh].ir.l, l_out, dtype=torch.float64)  # (2l+1, 2l_s+1, 2L+1)
        coupling[sh_start : sh_start + irreps_sh[i_sh].ir.dim] = w3j.permute(1, 2, 0) * self.dim_out**0.5
        self.register_constant("coupling", coupling.reshape(irreps_sh.dim, -1))

    def forward(self, x: Tensor, sh: Tensor, weights: List[Tensor], receiver: Tensor, n_atoms: int) -> Tensor:
        """Messages of the path summed at receivers, (n_atoms, 2L+1, mul), from sender features
        ``x`` (n_edges, 2l+1, mul), harmonics (n_edges, d_sh) and the weights of every path."""
        n_edges = sh.size(0)
        z = torch.mm(sh, self.coupling).reshape(n_edges, self.dim_out, self.dim_in)
        w = weights[self.index]  # (n_edges, mul)
        if torch.jit.is_scripting():
            y = torch.bmm(z, x * w.unsqueeze(1))
        else:
            y = _weighted_product(z, x, w)  # (n_edges, 2L+1, mul)
        return scatter_sum(y, receiver, n_atoms)


class _WeightedProduct(torch.autograd.Function):
    """``bmm(z, x * w[:, None])`` keeping only its inputs for the backward pass.

    ``z`` (n_edges, 2L+1, 2l+1), ``x`` (n_edges, 2l+1, mul), ``w`` (n_edges, mul). Plain
    autograd would keep the weighted features ``x * w`` of every path, each as large as ``x``;
    here ``x`` (shared by the paths of a sender block) and ``w`` (a view of the radial network's
    output) are kept and the product is formed again in the backward pass, which is written with
    differentiable operations so that training can differentiate it once more.
    """

    @staticmethod
    def forward(ctx, z: Tensor, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(z, x, w)
        return torch.bmm(z, x * w.unsqueeze(1))

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, x, w = ctx.saved_tensors
        grad_z = grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_z = torch.bmm(grad, (x * w.unsqueeze(1)).transpose(1, 2))
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_xw = torch.bmm(z.transpose(1, 2), grad)  # (n_edges, 2l+1, mul)
            if ctx.needs_input_grad[1]:
                grad_x = grad_xw * w.unsqueeze(1)
            if ctx.needs_input_grad[2]:
                grad_w = (grad_xw * x).sum(dim=1)
        return grad_z, grad_x, grad_w


@torch.jit.unused
def _weighted_product(z: Tensor, x: Tensor, w: Tensor) -> Tensor:
    """Eager path of :class:`_Path` (TorchScript cannot call an autograd Function)."""
    return _WeightedProduct.apply(z, x, w)


class _SenderBlock(torch.nn.Module):
    """All paths leaving one irrep block (mul x l) of the sender's features."""

    def __init__(self, paths: List[_Path], index: int, mul: int, l_in: int):
        super().__init__()
        self.index = index
        self.mul = mul
        self.dim = 2 * l_in + 1
        self.paths = torch.nn.ModuleList(paths)

    def forward(self, h: List[Tensor], sh: Tensor, weights: List[Tensor], edge_index: Tensor) -> List[Tensor]:
        node_block = h[self.index]
        n_atoms = node_block.size(0)
        # (n_atoms, 2l+1, mul), channels fastest, then gathered per edge
        x = node_block.reshape(n_atoms, self.mul, self.dim).transpose(1, 2).contiguous().index_select(0, edge_index[0])
        outputs: List[Tensor] = []
        for path in self.paths:
            messages = path(x, sh, weights, edge_index[1], n_atoms)  # (n_atoms, 2L+1, mul)
            outputs.append(messages.transpose(1, 2).reshape(n_atoms, -1))  # e3nn layout (mul, 2L+1)
        return outputs


class EdgeTensorProduct(torch.nn.Module):
    """Sum over incoming edges of ``TP_uvu(h_sender, Y_edge; w_edge)``.

    Parameters
    ----------
    irreps_node : o3.Irreps
        Sender features.
    irreps_sh : o3.Irreps
        Spherical harmonics of the edges.
    irreps_target : o3.Irreps
        Irreps wanted; paths to others are not computed.

    Attributes
    ----------
    irreps_out : o3.Irreps
        One block ``mul x L`` per path, in the order of :func:`uvu_paths`, e3nn layout.
    weight_numel : int
        Weights per edge: ``mul`` per path, path-major (as e3nn).

    Shapes: ``forward(h (n_atoms, irreps_node.dim), sh (n_edges, irreps_sh.dim),
    weights (n_edges, weight_numel), edge_index (2, n_edges)) -> (n_atoms, irreps_out.dim)``.
    """

    block_sizes: List[int]
    weight_sizes: List[int]

    def __init__(self, irreps_node: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps):
        super().__init__()
        self.irreps_node = o3.Irreps(irreps_node)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.paths = uvu_paths(self.irreps_node, self.irreps_sh, irreps_target)
        self.irreps_out = o3.Irreps([(self.irreps_node[i_node].mul, ir_out) for i_node, _, ir_out in self.paths])
        blocks = []
        index = 0
        for i_node, (mul, ir) in enumerate(self.irreps_node):
            paths = []
            for i, i_sh, ir_out in self.paths:
                if i == i_node:
                    paths.append(_Path(self.irreps_sh, i_sh, mul, ir.l, ir_out.l, index))
                    index += 1
            if paths:
                blocks.append(_SenderBlock(paths, i_node, mul, ir.l))
        self.blocks = torch.nn.ModuleList(blocks)
        self.block_sizes = [mul * ir.dim for mul, ir in self.irreps_node]
        self.weight_sizes = [self.irreps_node[i_node].mul for i_node, _, _ in self.paths]
        self.weight_numel = sum(self.weight_sizes)

    def forward(self, h: Tensor, sh: Tensor, weights: Tensor, edge_index: Tensor) -> Tensor:
        path_weights = list(torch.split(weights, self.weight_sizes, dim=1))  # one split: one backward copy
        return self.forward_paths(h, sh, path_weights, edge_index)

    def forward_paths(self, h: Tensor, sh: Tensor, path_weights: List[Tensor], edge_index: Tensor) -> Tensor:
        """:meth:`forward` with the weights given per path, ``path_weights[p]`` (n_edges, mul_p)."""
        node_blocks = list(torch.split(h, self.block_sizes, dim=1))
        outputs: List[Tensor] = [h.new_zeros(h.size(0), 0)]
        for block in self.blocks:
            outputs.extend(block(node_blocks, sh, path_weights, edge_index))
        return torch.cat(outputs, dim=1)
