"""Scatter (segment) reductions over edges and atoms."""

import torch
from torch import Tensor

import mlff._ops  # noqa: F401  (registers torch.ops.mlff.scatter_sum)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Sum rows of ``src`` (n, ...) into ``dim_size`` rows by ``index`` (n,) int64.

    The compiled op ``torch.ops.mlff.scatter_sum`` (csrc/messages/scatter.cpp): an ``index_add``
    whose autograd keeps only ``index`` for the backward pass, where autograd's own
    ``index_add`` also keeps ``src`` alive, which for per-edge messages is the largest tensor of
    a model (a third of MACE's memory for energy and forces). Differentiable to any order.
    """
    return torch.ops.mlff.scatter_sum(src, index, dim_size)


@torch.library.register_fake("mlff::scatter_sum")
def _scatter_sum_fake(src, index, dim_size):
    return src.new_empty((dim_size,) + tuple(src.shape[1:]))
