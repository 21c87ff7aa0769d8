"""Scatter (segment) reductions over edges and atoms."""

import torch
from torch import Tensor


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Sum rows of ``src`` (n, ...) into ``dim_size`` rows by ``index`` (n,) int64.

    On the CPU this is an accumulating ``index_put``: autograd then keeps only ``index`` for the
    backward pass (a gather of the incoming gradient), where ``index_add`` also keeps ``src``
    alive, which for per-edge messages is the largest tensor of a model (a third of MACE's
    memory for energy and forces). On CUDA ``index_add`` stays: its atomic adds are faster than
    the sort that an accumulating ``index_put`` does there.
    """
    shape = [dim_size] + list(src.shape[1:])
    out = torch.zeros(shape, dtype=src.dtype, device=src.device)
    if src.is_cuda:
        return out.index_add(0, index, src)
    return torch.index_put(out, [index], src, accumulate=True)
