"""Message blocks fused into one compiled pass over the edges (``torch.ops.mlff``, CPU).

``painn_messages`` is PaiNN's message sum (:class:`mlff.models.painn.PaiNNMessage`): for every
edge e (sender j, receiver i) with filters ``w = [w_s | w_v | w_r]`` (n_edges, 3F), sender
features ``x = [x_s | x_v | x_r]`` (n_atoms, 3F), sender vectors ``v`` (n_atoms, 3, F) and unit
directions ``u`` (n_edges, 3),

    d_scalars[i]    = sum_e w_s x_s[j]
    d_vectors[i, d] = sum_e (w_v x_v[j]) v[j, d] + (w_r x_r[j]) u[e, d]

Autograd is registered with the op in C++ (csrc/messages/painn.cpp), so eager code, TorchScript
and C++ engines all differentiate it: first derivatives (forces) run a compiled backward kernel;
when a graph of the derivatives is being built (training differentiates forces again) the
backward pass is composed of differentiable operations, so every order is exact. On CUDA the
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


def painn_messages(
    filters: Tensor, features: Tensor, vectors: Tensor, directions: Tensor, sender: Tensor, receiver: Tensor
) -> Tuple[Tensor, Tensor]:
    """PaiNN's message sums (see the module docstring): (n_atoms, F), (n_atoms, 3, F).

    The compiled op on CPU, :func:`painn_messages_reference` on other devices.
    """
    if filters.is_cpu:
        return torch.ops.mlff.painn_messages(filters, features, vectors, directions, sender, receiver)
    return painn_messages_reference(filters, features, vectors, directions, sender, receiver)


@torch.library.register_fake("mlff::painn_messages")
def _painn_messages_fake(filters, features, vectors, directions, sender, receiver):
    n_features = features.size(1) // 3
    return features.new_empty((features.size(0), n_features)), vectors.new_empty(vectors.shape)


@torch.library.register_fake("mlff::painn_messages_backward")
def _painn_messages_backward_fake(grad_scalars, grad_vectors, filters, features, vectors, directions, sender, receiver):
    return filters.new_empty(filters.shape), features.new_empty(features.shape), vectors.new_empty(vectors.shape), directions.new_empty(directions.shape)
