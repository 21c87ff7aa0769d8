"""Message blocks fused into one compiled pass over the edges (``torch.ops.mlff``, CPU).

``painn_messages`` is PaiNN's message sum (:class:`mlff.models.painn.PaiNNMessage`): for every
edge e (sender j, receiver i) with filters ``w = [w_s | w_v | w_r]`` (n_edges, 3F), sender
features ``x = [x_s | x_v | x_r]`` (n_atoms, 3F), sender vectors ``v`` (n_atoms, 3, F) and unit
directions ``u`` (n_edges, 3),

    d_scalars[i]    = sum_e w_s x_s[j]
    d_vectors[i, d] = sum_e (w_v x_v[j]) v[j, d] + (w_r x_r[j]) u[e, d]

Autograd: first derivatives (forces) run the compiled backward kernel; when a graph of the
derivatives is being built (training differentiates forces again) the backward pass is written
with differentiable tensor operations instead, so every order is exact. Under TorchScript the
models use :func:`painn_messages_reference`, the same sums as plain tensor operations.
"""

from typing import Tuple

import torch
from torch import Tensor

import mlff._ops  # noqa: F401  (registers torch.ops.mlff.painn_messages)
from mlff.nn.scatter import scatter_sum


def painn_messages_reference(
    filters: Tensor, features: Tensor, vectors: Tensor, directions: Tensor, sender: Tensor, receiver: Tensor
) -> Tuple[Tensor, Tensor]:
    """The sums of :func:`painn_messages` as tensor operations: (n_atoms, F), (n_atoms, 3, F)."""
    n_atoms = features.size(0)
    n_features = features.size(1) // 3
    messages = features[sender] * filters  # (n_edges, 3F)
    d_scalar, d_vector_vector, d_vector_direction = torch.split(messages, n_features, dim=-1)
    d_vectors = d_vector_vector.unsqueeze(1) * vectors[sender] + d_vector_direction.unsqueeze(1) * directions.unsqueeze(-1)
    return scatter_sum(d_scalar, receiver, n_atoms), scatter_sum(d_vectors, receiver, n_atoms)


def _painn_messages_gradients(
    grad_scalars: Tensor,
    grad_vectors: Tensor,
    filters: Tensor,
    features: Tensor,
    vectors: Tensor,
    directions: Tensor,
    sender: Tensor,
    receiver: Tensor,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients with respect to (filters, features, vectors, directions), as differentiable
    tensor operations (the compiled backward kernel computes the same)."""
    n_atoms = features.size(0)
    n_features = features.size(1) // 3
    w_s, w_v, w_r = torch.split(filters, n_features, dim=-1)  # (n_edges, F) each
    x = features[sender]
    x_s, x_v, x_r = torch.split(x, n_features, dim=-1)
    v = vectors[sender]  # (n_edges, 3, F)
    g_s = grad_scalars[receiver]  # (n_edges, F)
    g_v = grad_vectors[receiver]  # (n_edges, 3, F)
    t_v = (g_v * v).sum(dim=1)  # (n_edges, F)
    t_r = (g_v * directions.unsqueeze(-1)).sum(dim=1)
    grad_filters = torch.cat([g_s * x_s, t_v * x_v, t_r * x_r], dim=-1)
    grad_features = scatter_sum(torch.cat([g_s * w_s, t_v * w_v, t_r * w_r], dim=-1), sender, n_atoms)
    grad_vectors_in = scatter_sum((w_v * x_v).unsqueeze(1) * g_v, sender, n_atoms)
    grad_directions = (g_v * (w_r * x_r).unsqueeze(1)).sum(dim=-1)  # (n_edges, 3)
    return grad_filters, grad_features, grad_vectors_in, grad_directions


class _PaiNNMessages(torch.autograd.Function):
    @staticmethod
    def forward(ctx, filters, features, vectors, directions, sender, receiver):
        ctx.save_for_backward(filters, features, vectors, directions, sender, receiver)
        return torch.ops.mlff.painn_messages(filters, features, vectors, directions, sender, receiver)

    @staticmethod
    def backward(ctx, grad_scalars, grad_vectors):
        inputs = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: stay differentiable
            grads = _painn_messages_gradients(grad_scalars, grad_vectors, *inputs)
        else:
            grads = torch.ops.mlff.painn_messages_backward(grad_scalars, grad_vectors, *inputs)
        return tuple(grads) + (None, None)


@torch.jit.unused
def painn_messages(
    filters: Tensor, features: Tensor, vectors: Tensor, directions: Tensor, sender: Tensor, receiver: Tensor
) -> Tuple[Tensor, Tensor]:
    """PaiNN's message sums (see the module docstring): (n_atoms, F), (n_atoms, 3, F).

    The compiled kernel on CPU; elsewhere (CUDA) :func:`painn_messages_reference`.
    """
    if not filters.is_cpu:
        return painn_messages_reference(filters, features, vectors, directions, sender, receiver)
    return _PaiNNMessages.apply(filters, features, vectors, directions, sender, receiver)


@torch.library.register_fake("mlff::painn_messages")
def _painn_messages_fake(filters, features, vectors, directions, sender, receiver):
    n_features = features.size(1) // 3
    return features.new_empty((features.size(0), n_features)), vectors.new_empty(vectors.shape)


@torch.library.register_fake("mlff::painn_messages_backward")
def _painn_messages_backward_fake(grad_scalars, grad_vectors, filters, features, vectors, directions, sender, receiver):
    return filters.new_empty(filters.shape), features.new_empty(features.shape), vectors.new_empty(vectors.shape), directions.new_empty(directions.shape)
