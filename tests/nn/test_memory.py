"""Memory-saving evaluation paths: the same numbers, to second order, as plain autograd.

The equivariant blocks keep fewer tensors for the backward pass than autograd would (products
that recompute their factors, an accumulating ``index_put`` for scatter sums, chunked and
recomputed convolutions for large systems). These tests pin that down: gradients and
second derivatives (training differentiates forces) equal the plain formulas, chunked equals
unchunked, and what a MACE forward keeps per edge stays small.
"""

import pytest
import torch

from mlff import graph as atomic_graph
from mlff.nn.equivariant.convolution import EdgeConvolution
from mlff.nn.equivariant.symmetric_contraction import _MonomialProduct
from mlff.nn.equivariant.tensor_product import _WeightedProduct
from mlff.nn.scatter import scatter_sum
from tests.models.conftest import make_potential
from tests.structures import TEST_CUTOFF, water_box


@pytest.mark.parametrize("dim_out, dim_in", [(5, 3), (1, 1), (3, 1), (5, 1), (1, 3), (1, 5), (3, 3), (5, 5)])
def test_weighted_product_first_and_second_derivatives(dim_out, dim_in):
    """Every (2L+1, 2l+1) shape of l, L <= 2 paths, degenerate ones (a side of 1) included."""
    torch.manual_seed(0)
    z = torch.randn(6, dim_out, dim_in, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, dim_in, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    expected = torch.bmm(z, x * w.unsqueeze(1))
    assert torch.allclose(_WeightedProduct.apply(z, x, w), expected, atol=1e-14)
    assert torch.autograd.gradcheck(_WeightedProduct.apply, (z, x, w))
    assert torch.autograd.gradgradcheck(_WeightedProduct.apply, (z, x, w))


def test_monomial_product_first_and_second_derivatives():
    torch.manual_seed(0)
    previous = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    prefix = torch.tensor([0, 0, 1, 4, 4, 2])
    last = torch.tensor([0, 3, 3, 1, 2, 2])

    def product(previous, a):
        return _MonomialProduct.apply(previous, a, prefix, last)

    expected = previous[:, prefix] * a[:, last]
    assert torch.equal(product(previous, a), expected)
    assert torch.autograd.gradcheck(product, (previous, a))
    assert torch.autograd.gradgradcheck(product, (previous, a))


def test_scatter_sum_derivatives_and_what_it_keeps():
    torch.manual_seed(0)
    src = torch.randn(7, 2, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([3, 0, 3, 1, 0, 3, 1])
    expected = torch.zeros(4, 2, 3, dtype=torch.float64).index_add(0, index, src)
    assert torch.allclose(scatter_sum(src, index, 4), expected, atol=1e-14)
    assert torch.autograd.gradcheck(lambda s: scatter_sum(s, index, 4), (src,))
    assert torch.autograd.gradgradcheck(lambda s: scatter_sum(s, index, 4), (src,))

    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        scatter_sum(src * 2.0, index, 4)
    assert all(t.dtype == torch.int64 for t in kept), "the sum keeps its summands alive for backward"


def _set_chunk_edges(potential: torch.nn.Module, chunk_edges: int) -> int:
    convolutions = [m for m in potential.modules() if isinstance(m, EdgeConvolution)]
    for convolution in convolutions:
        convolution.chunk_edges = chunk_edges
    return len(convolutions)


@pytest.mark.parametrize("family", ["mace", "nequip"])
def test_chunked_convolution_gives_the_same_energy_forces_and_stress(family):
    potential = make_potential(family, torch.float64)
    atoms = water_box()
    graph = atomic_graph.from_atoms(atoms, cutoff=TEST_CUTOFF, dtype=torch.float64)
    whole = potential(graph, compute_forces=True, compute_stress=True)
    n_edges = graph.edge_index.size(1)
    assert _set_chunk_edges(potential, n_edges // 3) > 0
    chunked = potential(graph, compute_forces=True, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        assert torch.allclose(chunked[key], whole[key], rtol=1e-10, atol=1e-12), key


def test_chunked_convolution_is_not_used_in_training_or_without_gradients():
    potential = make_potential("mace", torch.float64)
    graph = atomic_graph.from_atoms(water_box(), cutoff=TEST_CUTOFF, dtype=torch.float64)
    _set_chunk_edges(potential, 16)
    calls = []
    convolution = next(m for m in potential.modules() if isinstance(m, EdgeConvolution))
    original = convolution._chunked
    convolution._chunked = lambda *args: calls.append(1) or original(*args)
    potential.train()
    potential(graph, compute_forces=True)
    with torch.no_grad():
        potential.eval().model(graph)
    assert calls == []
    potential(graph, compute_forces=True)
    assert calls == [1]


def test_mace_keeps_little_per_edge_for_energy_and_forces():
    """What autograd keeps of per-edge tensors for the forces of a MACE (8 channels, l_max 3,
    hidden l 1), float64: about 3.5 kB per edge (radial weights and network activations,
    harmonics, coupling matrices). Plain autograd kept 8.8 kB: the summands of every scatter sum
    and the weighted features of every tensor-product path."""
    potential = make_potential("mace", torch.float64, n_channels=8, l_max=3, radial_hidden=(16, 16))
    graph = atomic_graph.from_atoms(water_box(), cutoff=TEST_CUTOFF, dtype=torch.float64)
    n_edges = graph.edge_index.size(1)
    storages = {}

    def keep(tensor):
        if tensor.dim() > 0 and tensor.size(0) == n_edges:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        potential(graph, compute_forces=True)
    per_edge = sum(storages.values()) / n_edges
    assert per_edge < 4500, f"{per_edge:.0f} bytes of per-edge tensors kept per edge"
