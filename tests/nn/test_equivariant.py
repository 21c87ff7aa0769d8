"""Equivariant blocks (mlff.nn.equivariant): coupling bases, symmetric contraction, gate,
species-dependent linear maps, convolution, and constants that stay exact across dtypes."""

import pytest
import torch
from e3nn import o3

from mlff.nn.equivariant.convolution import EdgeConvolution
from mlff.nn.equivariant.coupling import symmetric_coupling_basis
from mlff.nn.equivariant.gate import Gate
from mlff.nn.equivariant.species import partition_by_species
from mlff.nn.equivariant.species_linear import SpeciesLinear
from mlff.nn.equivariant.symmetric_contraction import SymmetricContraction, _coupling_by_order
from mlff.nn.equivariant.tensor_product import EdgeTensorProduct, uvu_paths
from mlff.nn.scatter import scatter_sum

ATOL64 = 1e-12


@pytest.fixture
def float64_default():
    """e3nn builds Wigner D matrices in the default dtype; float64 ones check to 1e-12."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def rotation_with_inversion() -> torch.Tensor:
    torch.manual_seed(1)
    return -o3.rand_matrix(dtype=torch.float64)


def test_partition_groups_present_species_and_inverts():
    species = torch.tensor([3, 0, 3, 3, 1, 0])
    partition = partition_by_species(species, 5)
    assert partition.species == [0, 1, 3]
    assert [index.tolist() for index in partition.indices] == [[1, 5], [4], [0, 2, 3]]
    assert torch.equal(torch.cat(partition.indices)[partition.inverse], torch.arange(6))


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("ir_out", ["0e", "1o", "1e", "2e"])
def test_coupling_basis_spans_e3nn_reduced_tensor_products(order, ir_out, float64_default):
    irreps = o3.Irreps("0e+1o+2e")
    ours = symmetric_coupling_basis(irreps, ir_out, order)
    formula = "=".join(["".join("ijk"[: order])] + ["".join(p) for p in _transpositions("ijk"[:order])])
    try:
        reference = o3.ReducedTensorProducts(formula, filter_ir_out=[ir_out], **{c: irreps for c in "ijk"[:order]})
    except ValueError:  # e3nn 0.6 fails on an empty result instead of returning one
        assert ours.size(0) == 0
        return
    theirs = reference.change_of_basis.reshape(-1, o3.Irrep(ir_out).dim * irreps.dim**order)
    assert ours.size(0) == theirs.size(0)  # same number of paths
    if ours.size(0) == 0:
        return
    stacked = torch.cat([ours.reshape(ours.size(0), -1), theirs])
    assert torch.linalg.matrix_rank(stacked, atol=1e-8) == ours.size(0)  # same span


def _transpositions(indices: str):
    """Adjacent transpositions of an index string (they generate the symmetric group)."""
    result = []
    for i in range(len(indices) - 1):
        chars = list(indices)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
        result.append("".join(chars))
    return result


def test_coupling_basis_is_symmetric_equivariant_and_normalized(float64_default):
    irreps = o3.Irreps("0e+1o+2e+3o")
    basis = symmetric_coupling_basis(irreps, "1o", 3)  # (paths, 3, 16, 16, 16)
    assert basis.shape[0] == 12  # as e3nn's ReducedTensorProducts finds
    assert torch.allclose(basis, basis.permute(0, 1, 3, 2, 4), atol=ATOL64)
    assert torch.allclose(basis, basis.permute(0, 1, 4, 3, 2), atol=ATOL64)
    torch.testing.assert_close(basis.pow(2).flatten(2).sum(2), torch.ones(12, 3))
    rotation = rotation_with_inversion()
    d_in = irreps.D_from_matrix(rotation)
    d_out = o3.Irrep("1o").D_from_matrix(rotation)
    x = torch.randn(16)
    y = torch.einsum("pmijk,i,j,k->pm", basis, x, x, x)
    rx = d_in @ x
    y_rotated = torch.einsum("pmijk,i,j,k->pm", basis, rx, rx, rx)
    torch.testing.assert_close(y_rotated, y @ d_out.T, atol=ATOL64, rtol=0)


def _brute_force_contraction(contraction: SymmetricContraction, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """sum_nu W_nu[z] U_nu A^nu with explicit einsums over full (unsorted) index tuples.

    ``a`` (n, k, d) channels-last; returns (n, k, q).
    """
    irreps_channel = o3.Irreps([(1, ir) for _, ir in contraction.irreps_in])
    irreps_out_channel = o3.Irreps([(1, ir) for _, ir in contraction.irreps_out])
    coupling = _coupling_by_order(irreps_channel, irreps_out_channel, contraction.correlation)
    weights = contraction.weight[species]  # (n, all paths, k)
    total = torch.zeros(a.size(0), a.size(1), contraction.q, dtype=a.dtype)
    letters = "ijl"
    start = 0
    for order, u in enumerate(coupling, start=1):
        w = weights[:, start : start + u.size(0)]
        inputs = ",".join(f"nk{c}" for c in letters[:order])
        total = total + torch.einsum(f"pq{letters[:order]},npk,{inputs}->nkq", u, w, *([a] * order))
        start += u.size(0)
    return total


def test_symmetric_contraction_matches_brute_force_and_is_equivariant(float64_default):
    torch.manual_seed(0)
    k = 3
    irreps_in = o3.Irreps(f"{k}x0e+{k}x1o+{k}x2e")
    irreps_out = o3.Irreps(f"{k}x0e+{k}x1o")
    contraction = SymmetricContraction(irreps_in, irreps_out, correlation=3, n_species=4)
    species = torch.tensor([0, 3, 3, 0, 3, 0, 0])  # species 1 and 2 absent
    partition = partition_by_species(species, 4)
    x = torch.randn(7, irreps_in.dim)
    y = contraction(x, partition)

    a = torch.cat([x[:, :k].reshape(7, k, 1), x[:, k : 4 * k].reshape(7, k, 3), x[:, 4 * k :].reshape(7, k, 5)], dim=2)
    expected = _brute_force_contraction(contraction, a, species)
    expected = torch.cat([expected[:, :, :1].reshape(7, k), expected[:, :, 1:].reshape(7, 3 * k)], dim=1)
    torch.testing.assert_close(y, expected, atol=ATOL64, rtol=0)

    rotation = rotation_with_inversion()
    rotated = contraction(x @ irreps_in.D_from_matrix(rotation).T, partition)
    torch.testing.assert_close(rotated, y @ irreps_out.D_from_matrix(rotation).T, atol=ATOL64, rtol=0)
    assert torch.equal(torch.jit.script(contraction)(x, partition), y)


def test_symmetric_contraction_of_zero_is_zero():
    contraction = SymmetricContraction("2x0e+2x1o", "2x0e", correlation=3, n_species=1)
    zeros = torch.zeros(3, 8)
    assert torch.equal(contraction(zeros, partition_by_species(torch.zeros(3, dtype=torch.long), 1)), torch.zeros(3, 2))


def test_gate_is_equivariant_with_odd_scalars_and_gates(float64_default):
    gate = Gate("2x0e+1x0o", "1x0e+1x0o", "1x1o+1x2e")
    assert gate.irreps_out == o3.Irreps("2x0e+1x0o+1x1o+1x2o")  # the odd gate flips 2e
    x = torch.randn(5, gate.irreps_in.dim)
    rotation = rotation_with_inversion()
    rotated = gate(x @ gate.irreps_in.D_from_matrix(rotation).T)
    torch.testing.assert_close(rotated, gate(x) @ gate.irreps_out.D_from_matrix(rotation).T, atol=ATOL64, rtol=0)
    assert torch.equal(torch.jit.script(gate)(x), gate(x))
    assert torch.equal(gate(torch.zeros(2, gate.irreps_in.dim)), torch.zeros(2, gate.irreps_out.dim))


def test_species_linear_applies_each_species_weights():
    torch.manual_seed(0)
    layer = SpeciesLinear("3x0e+2x1o", "2x0e+2x1o", n_species=3)
    species = torch.tensor([2, 0, 2, 1])
    x = torch.randn(4, 9)
    y = layer(x, partition_by_species(species, 3))
    for atom, s in enumerate(species.tolist()):
        torch.testing.assert_close(y[atom], layer.linear(x[atom : atom + 1], layer.weight[s])[0])
    assert torch.equal(torch.jit.script(layer)(x, partition_by_species(species, 3)), y)


def test_edge_tensor_product_equals_e3nn_tensor_product(float64_default):
    """Same numbers, weight layout and output layout as e3nn's ``uvu`` TensorProduct."""
    torch.manual_seed(0)
    irreps_node = o3.Irreps("3x0e+2x1o+2x2e+1x1e")
    irreps_sh = o3.Irreps.spherical_harmonics(2)
    ours = EdgeTensorProduct(irreps_node, irreps_sh, "0e+0o+1o+1e+2e+2o")
    reference = o3.TensorProduct(
        irreps_node,
        irreps_sh,
        ours.irreps_out,
        [(i_node, i_sh, path, "uvu", True) for path, (i_node, i_sh, _) in enumerate(ours.paths)],
        shared_weights=False,
        internal_weights=False,
    )
    assert ours.weight_numel == reference.weight_numel
    h = torch.randn(5, irreps_node.dim)
    sh = torch.randn(11, irreps_sh.dim)
    edge_index = torch.randint(0, 5, (2, 11))
    weights = torch.randn(11, reference.weight_numel)
    expected = scatter_sum(reference(h[edge_index[0]], sh, weights), edge_index[1], 5)
    actual = ours(h, sh, weights, edge_index)
    torch.testing.assert_close(actual, expected, atol=ATOL64, rtol=0)
    assert torch.equal(torch.jit.script(ours)(h, sh, weights, edge_index), actual)


def test_constants_built_in_float32_are_exact_in_float64():
    """Clebsch-Gordan coefficients and coupling bases are re-derived from float64 on .double()."""
    torch.manual_seed(0)
    convolution = EdgeConvolution("2x0e+2x1o+2x2e", "0e+1o+2e", "0e+1o+1e+2e+2o", [4, 8], scale=0.5).double()
    contraction = SymmetricContraction("2x0e+2x1o+2x2e", "2x0e+2x1o", correlation=3, n_species=1).double()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rotation = rotation_with_inversion()
        d_node = convolution.irreps_node.D_from_matrix(rotation)
        d_sh = convolution.irreps_sh.D_from_matrix(rotation)
        d_out = convolution.irreps_out.D_from_matrix(rotation)
        d_in = contraction.irreps_in.D_from_matrix(rotation)
        d_product = contraction.irreps_out.D_from_matrix(rotation)
    finally:
        torch.set_default_dtype(previous)
    generator = torch.Generator().manual_seed(2)
    h = torch.randn(5, convolution.irreps_node.dim, dtype=torch.float64, generator=generator)
    sh = torch.randn(6, convolution.irreps_sh.dim, dtype=torch.float64, generator=generator)
    radial = torch.randn(6, 4, dtype=torch.float64, generator=generator)
    edge_index = torch.randint(0, 5, (2, 6), generator=generator)
    rotated = convolution(h @ d_node.T, sh @ d_sh.T, radial, edge_index)
    torch.testing.assert_close(rotated, convolution(h, sh, radial, edge_index) @ d_out.T, atol=ATOL64, rtol=0)
    partition = partition_by_species(torch.zeros(5, dtype=torch.long), 1)
    rotated = contraction(h @ d_in.T, partition)
    torch.testing.assert_close(rotated, contraction(h, partition) @ d_product.T, atol=ATOL64, rtol=0)
    assert contraction.coefficient_values.dtype == torch.float64
    assert not any(name.startswith("coefficient") for name in contraction.state_dict())  # rebuilt, never loaded rounded
