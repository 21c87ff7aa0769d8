"""Symmetric contraction: MACE's higher-body-order product basis (Batatia et al. 2022).

For every atom and channel k, the atomic basis ``A_k`` (one copy of ``V = 0e+1o+2e+3o``, say,
per channel; dimension d) is raised to the powers nu = 1..correlation and coupled to each
output irrep L:

    B_{k,LM} = sum_{nu=1}^{correlation} sum_eta W_nu[z, eta, k]
               sum_{i_1..i_nu} U_nu[eta, LM, i_1..i_nu] A_{k,i_1} ... A_{k,i_nu}

U_nu are the symmetric coupling bases of :mod:`mlff.nn.equivariant.coupling` (one tensor per
path eta); the weights W depend on the species z of the atom and the channel, never on the
neighbours, so B is a (nu+1)-body function of the neighbour positions at cost linear in the
number of neighbours.

Evaluation. Because U_nu is symmetric, only sorted index tuples (monomials
``A_{i_1} .. A_{i_nu}`` with i_1 <= .. <= i_nu) are needed, each weighted by its number of
distinct orderings, and the Clebsch-Gordan selection rules leave most of them with no
coefficient at all (for l_max 3, correlation 3 and outputs 0e+1o: 355 of the 4096 products
A_i A_j A_l). So, per species s present:

1. the monomials that occur are built by multiplying a monomial of order nu-1 by one more
   component of A (one gather and one product per order): F (k, n_monomials, n_atoms_s);
2. the weights are folded into the coefficients once per species, T_s = C W_s
   (k, q, n_monomials), with no atom index. C is stored by its nonzeros only (0.4 % of the
   dense (paths, n_monomials q) matrix for l_max 3 in, 0e+1o+2e out), so the fold is one
   gather and one scatter-add instead of a dense matrix product;
3. ``B = sum_nu T_{s,nu}^T @ F_nu``, one batched matrix product over channels per order.

For energy and forces the backward pass keeps each F_nu once: the monomial products keep
their inputs, not their gathered factors (:class:`_MonomialProduct`), and the orders are never
concatenated.
"""

import itertools
import math
from typing import Dict, List, Tuple

import torch
from e3nn import o3
from torch import Tensor

from mlff.nn.equivariant.coupling import symmetric_coupling_basis
from mlff.nn.equivariant.precision import ExactConstants
from mlff.nn.equivariant.species import SpeciesPartition

Monomial = Tuple[int, ...]

_ZERO = 1e-12


def _uniform_multiplicity(irreps: o3.Irreps, name: str) -> Tuple[int, o3.Irreps]:
    """(k, per-channel irreps) of ``irreps`` = k x ir_1 + k x ir_2 + ... ."""
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1:
        raise ValueError(f"SymmetricContraction: {name} must have one multiplicity for all irreps, got {irreps}")
    return muls.pop(), o3.Irreps([(1, ir) for _, ir in irreps])


def _orderings(monomial: Monomial) -> int:
    """Number of distinct orderings of a sorted index tuple (multinomial coefficient)."""
    count = math.factorial(len(monomial))
    for _, group in itertools.groupby(monomial):
        count //= math.factorial(len(list(group)))
    return count


def _coupling_by_order(irreps_channel: o3.Irreps, irreps_out_channel: o3.Irreps, correlation: int) -> List[Tensor]:
    """U_nu for nu = 1..correlation, output irreps stacked: (n_paths_nu, q, d, .., d), float64."""
    d = irreps_channel.dim
    q = irreps_out_channel.dim
    result = []
    for order in range(1, correlation + 1):
        blocks = []
        row = 0
        for _, ir in irreps_out_channel:
            paths = symmetric_coupling_basis(irreps_channel, ir, order)  # (P_L, 2L+1, d, .., d)
            block = torch.zeros((paths.size(0), q) + (d,) * order, dtype=torch.float64)
            block[:, row : row + ir.dim] = paths
            blocks.append(block)
            row += ir.dim
        result.append(torch.cat(blocks))
    return result


def _at(u: Tensor, monomial: Monomial) -> Tensor:
    """Coefficients (n_paths, q) of U_nu (n_paths, q, d, .., d) at one index tuple."""
    return u[(slice(None), slice(None)) + monomial]


def _monomials(coupling: List[Tensor], d: int) -> List[List[Monomial]]:
    """Sorted index tuples needed at every order: those with a coefficient, and their prefixes."""
    correlation = len(coupling)
    needed: List[List[Monomial]] = []
    for order, u in enumerate(coupling, start=1):
        candidates = itertools.combinations_with_replacement(range(d), order)
        needed.append([m for m in candidates if _at(u, m).abs().max() > _ZERO])
    needed[0] = [(i,) for i in range(d)]  # order 1 is A itself
    for order in range(correlation, 1, -1):  # a monomial is built from its prefix
        prefixes = {m[:-1] for m in needed[order - 1]}
        needed[order - 2] = sorted(set(needed[order - 2]) | prefixes)
    return needed


class _MonomialStep(torch.nn.Module):
    """Order-nu monomials from order nu-1 ones: ``F_nu = F_{nu-1}[.., prefix] * A[.., last]``."""

    def __init__(self, prefix: List[int], last: List[int], start: int):
        super().__init__()
        self.start = start  # first row of this order's monomials in the coefficients
        self.size = len(prefix)
        self.register_buffer("prefix", torch.tensor(prefix, dtype=torch.long), persistent=False)
        self.register_buffer("last", torch.tensor(last, dtype=torch.long), persistent=False)

    def forward(self, previous: Tensor, a: Tensor) -> Tensor:
        """(k, n_monomials_{nu-1}, n), (k, d, n) -> (k, n_monomials_nu, n)."""
        if torch.jit.is_scripting():
            return previous.index_select(1, self.prefix) * a.index_select(1, self.last)
        return _monomial_product(previous, a, self.prefix, self.last)


class _MonomialProduct(torch.autograd.Function):
    """``previous[:, prefix] * a[:, last]`` keeping only its inputs for the backward pass.

    Plain autograd would keep both gathered factors (each as large as the result, the largest
    tensors of the contraction); here they are gathered again in the backward pass, which is
    written with differentiable operations, so that training can differentiate it once more.
    """

    @staticmethod
    def forward(ctx, previous: Tensor, a: Tensor, prefix: Tensor, last: Tensor) -> Tensor:
        ctx.save_for_backward(previous, a, prefix, last)
        return previous.index_select(1, prefix) * a.index_select(1, last)

    @staticmethod
    def backward(ctx, grad: Tensor):
        previous, a, prefix, last = ctx.saved_tensors
        grad_previous = grad_a = None
        if ctx.needs_input_grad[0]:
            grad_previous = torch.zeros_like(previous).index_add(1, prefix, grad * a.index_select(1, last))
        if ctx.needs_input_grad[1]:
            grad_a = torch.zeros_like(a).index_add(1, last, grad * previous.index_select(1, prefix))
        return grad_previous, grad_a, None, None


@torch.jit.unused
def _monomial_product(previous: Tensor, a: Tensor, prefix: Tensor, last: Tensor) -> Tensor:
    """Eager path of :class:`_MonomialStep` (TorchScript cannot call an autograd Function)."""
    return _MonomialProduct.apply(previous, a, prefix, last)


class SymmetricContraction(ExactConstants):
    """MACE product basis B from the atomic basis A, species-dependent weights.

    Parameters
    ----------
    irreps_in : o3.Irreps
        ``k x ir_1 + k x ir_2 + ...`` (e.g. 128x0e+128x1o+128x2e+128x3o): k channels, each a
        copy of V = ir_1 + ir_2 + ... .
    irreps_out : o3.Irreps
        ``k x L_1 + k x L_2 + ...`` (e.g. 128x0e+128x1o), same k.
    correlation : int
        Highest power nu of A (MACE: 3, i.e. four-body features from one layer).
    n_species : int

    Attributes
    ----------
    weight : Parameter, shape (n_species, n_paths, k)
        W_nu of all orders, paths of order 1 first; initialised N(0, 1/n_paths_nu).
    coefficient_values, coefficient_paths, coefficient_columns : buffers, shape (n_nonzero,)
        The nonzero coupling coefficients (float64-exact), their path and their column
        ``LM * n_monomials + monomial`` in T_s (k, q * n_monomials).

    Shapes: ``forward(x (n_atoms, irreps_in.dim), partition) -> (n_atoms, irreps_out.dim)``.
    """

    in_blocks: List[Tuple[int, int]]
    out_blocks: List[Tuple[int, int]]

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, correlation: int, n_species: int):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        k, irreps_channel = _uniform_multiplicity(self.irreps_in, "irreps_in")
        k_out, irreps_out_channel = _uniform_multiplicity(self.irreps_out, "irreps_out")
        if k_out != k:
            raise ValueError(f"SymmetricContraction: {irreps_in} and {irreps_out} have different channel counts")
        if correlation < 1:
            raise ValueError(f"SymmetricContraction: correlation must be >= 1, got {correlation}")
        self.n_channels = k
        self.correlation = correlation
        self.d = irreps_channel.dim
        self.q = irreps_out_channel.dim

        coupling = _coupling_by_order(irreps_channel, irreps_out_channel, correlation)
        monomials = _monomials(coupling, self.d)
        steps = []
        start = len(monomials[0])
        for order in range(2, correlation + 1):
            position: Dict[Monomial, int] = {m: i for i, m in enumerate(monomials[order - 2])}
            prefix = [position[m[:-1]] for m in monomials[order - 1]]
            steps.append(_MonomialStep(prefix, [m[-1] for m in monomials[order - 1]], start))
            start += len(prefix)
        self.steps = torch.nn.ModuleList(steps)

        # coefficients[p, (monomial, LM)] = orderings(m) U_nu[p, LM, m], block-diagonal in nu
        n_monomials = sum(len(ms) for ms in monomials)
        n_paths = [u.size(0) for u in coupling]
        coefficients = torch.zeros(sum(n_paths), n_monomials, self.q, dtype=torch.float64)
        path_start = 0
        monomial_start = 0
        scales = []
        for u, ms in zip(coupling, monomials):
            for i, m in enumerate(ms):
                coefficients[path_start : path_start + u.size(0), monomial_start + i] = _orderings(m) * _at(u, m)
            scales += [max(u.size(0), 1) ** -0.5] * u.size(0)
            path_start += u.size(0)
            monomial_start += len(ms)
        self.n_monomials = n_monomials
        self.n_linear = len(monomials[0])  # order 1: A itself
        paths, monomial, component = coefficients.nonzero(as_tuple=True)
        self.register_constant("coefficient_values", coefficients[paths, monomial, component])
        self.register_buffer("coefficient_paths", paths, persistent=False)
        self.register_buffer("coefficient_columns", component * n_monomials + monomial, persistent=False)
        scale = torch.tensor(scales).reshape(1, -1, 1)
        self.weight = torch.nn.Parameter(torch.randn(n_species, sum(n_paths), k) * scale)

        # (start, dim) of every irrep block in the e3nn layout of the input and of one output channel.
        self.in_blocks = []
        start = 0
        for mul, ir in self.irreps_in:
            self.in_blocks.append((start, ir.dim))
            start += mul * ir.dim
        self.out_blocks = []
        start = 0
        for _, ir in irreps_out_channel:
            self.out_blocks.append((start, ir.dim))
            start += ir.dim

    def forward(self, x: Tensor, partition: SpeciesPartition) -> Tensor:
        n_atoms = x.size(0)
        k = self.n_channels
        # e3nn layout (n, [k x ir_1 | k x ir_2 | ..]) -> (n, k, d)
        a = torch.cat([x[:, s : s + k * dim].reshape(n_atoms, k, dim) for s, dim in self.in_blocks], dim=2)
        results: List[Tensor] = [x.new_zeros(0, k, self.q)]  # keeps cat defined for an empty graph
        for s, index in zip(partition.species, partition.indices):
            # (k, d, n_s): atoms fastest, so that picking monomials copies whole rows
            a_s = a.index_select(0, index).permute(1, 2, 0).contiguous()
            # T_s[:, column] = sum over the nonzeros in that column of value * W_s[path]
            folded = (self.weight[s].index_select(0, self.coefficient_paths) * self.coefficient_values.unsqueeze(1)).t()
            t = a.new_zeros(k, self.q * self.n_monomials).index_add_(1, self.coefficient_columns, folded)
            t = t.reshape(k, self.q, self.n_monomials)
            # B = sum over orders of T_nu^T F_nu: each F_nu is kept once for the backward pass
            # (by this product and by the next order's step), never copied into one big tensor
            features = a_s
            b = torch.bmm(t[:, :, : self.n_linear], features)  # (k, q, n_s)
            for step in self.steps:
                features = step(features, a_s)  # (k, n_monomials_nu, n_s)
                b = b + torch.bmm(t[:, :, step.start : step.start + step.size], features)
            results.append(b.permute(2, 0, 1))  # (n_s, k, q)
        b = torch.cat(results).index_select(0, partition.inverse)  # (n_atoms, k, q)
        # -> e3nn layout (n, [k x L_1 | k x L_2 | ..])
        return torch.cat([b[:, :, s : s + dim].reshape(n_atoms, k * dim) for s, dim in self.out_blocks], dim=1)
