"""Symmetric coupling bases: generalized Clebsch-Gordan coefficients for products of one
representation with itself.

Let ``V = irreps_in`` (for MACE: ``0e + 1o + 2e + 3o``, dimension d). A polynomial of degree
``order`` in ``x in V`` that transforms as the irrep ``ir_out`` is
``y_M = sum_{i_1..i_nu} U[M, i_1, .., i_nu] x_{i_1} .. x_{i_nu}``, with ``U`` equivariant and,
without loss of generality, symmetric in its input indices. The equivariant symmetric ``U``
form a vector space; this module computes an orthogonal basis of it, one tensor per *coupling
path*.

Construction: every binary coupling tree ``((x_{b1} (x) x_{b2})_{ir_12} (x) x_{b3})_{ir_out}`` of
irrep blocks b of V, built with real Wigner 3j symbols, is equivariant, and together they span
all equivariant maps ``V^(x)nu -> ir_out``. Averaging each over the permutations of its inputs
projects onto the symmetric ones; modified Gram-Schmidt in float64 over the trees, enumerated
in a fixed order, then keeps an orthogonal basis. The result is deterministic (no SVD, no
random numbers), so weights trained against it stay valid when it is rebuilt.
"""

import functools
import itertools
from typing import Dict, List, Tuple

import torch
from e3nn import o3
from torch import Tensor

_TOLERANCE = 1e-9


def _blocks(irreps_in: o3.Irreps) -> List[Tuple[o3.Irrep, int]]:
    """(irrep, offset) of every single irrep of ``irreps_in`` (multiplicities expanded)."""
    blocks: List[Tuple[o3.Irrep, int]] = []
    offset = 0
    for mul, ir in irreps_in:
        for _ in range(mul):
            blocks.append((ir, offset))
            offset += ir.dim
    return blocks


def _coupling_trees(irreps_in: o3.Irreps, ir_out: o3.Irrep, order: int) -> List[Tensor]:
    """Coupling trees of ``order`` factors of ``irreps_in`` that end in ``ir_out``.

    Only non-decreasing tuples of blocks are enumerated: a permuted tuple gives, once
    symmetrized, the same span. Returns tensors of shape (ir_out.dim, d, ..., d) with
    ``order`` input axes, float64.
    """
    d = irreps_in.dim
    blocks = _blocks(irreps_in)
    l_max_in = max(ir.l for ir, _ in blocks)
    embeddings = []
    for ir, offset in blocks:
        e = torch.zeros(ir.dim, d, dtype=torch.float64)
        e[:, offset : offset + ir.dim] = torch.eye(ir.dim, dtype=torch.float64)
        embeddings.append(e)  # (ir.dim, d): the block as a factor of its own

    # partial[prefix] = [(tensor (ir.dim, d^k), ir)] for a tuple prefix of blocks; intermediate
    # irreps too high to come back down to ir_out with the factors left are dropped.
    partial: Dict[Tuple[int, ...], List[Tuple[Tensor, o3.Irrep]]] = {
        (b,): [(embeddings[b], blocks[b][0])] for b in range(len(blocks))
    }
    for k in range(2, order + 1):
        remaining = order - k
        grown: Dict[Tuple[int, ...], List[Tuple[Tensor, o3.Irrep]]] = {}
        for prefix, trees in partial.items():
            for b in range(prefix[-1], len(blocks)):
                ir_b, offset_b = blocks[b]
                new_trees = []
                for tensor, ir_acc in trees:
                    for ir_new in ir_acc * ir_b:
                        if ir_new.l > ir_out.l + remaining * l_max_in:
                            continue
                        if remaining == 0 and ir_new != ir_out:
                            continue
                        w3j = o3.wigner_3j(ir_acc.l, ir_b.l, ir_new.l, dtype=torch.float64)
                        # new[M_new, I, offset_b + m] = sum_M w3j[M, m, M_new] tensor[M, I]
                        coupled = (w3j.flatten(1).t() @ tensor).reshape(ir_b.dim, ir_new.dim, -1).permute(1, 2, 0)
                        new = torch.zeros(ir_new.dim, tensor.size(1), d, dtype=torch.float64)
                        new[:, :, offset_b : offset_b + ir_b.dim] = coupled
                        new_trees.append((new.reshape(ir_new.dim, -1), ir_new))
                if new_trees:
                    grown[prefix + (b,)] = new_trees
        partial = grown
    result = []
    for prefix in sorted(partial):
        for tensor, ir in partial[prefix]:
            if ir == ir_out:
                result.append(tensor.reshape((ir_out.dim,) + (d,) * order))
    return result


def _symmetrize(tensor: Tensor, order: int) -> Tensor:
    """Average of ``tensor`` (M, i_1, .., i_order) over permutations of its input axes."""
    permutations = list(itertools.permutations(range(1, order + 1)))
    total = torch.zeros_like(tensor)
    for perm in permutations:
        total = total + tensor.permute((0,) + perm)
    return total / len(permutations)


def symmetric_coupling_basis(irreps_in: o3.Irreps, ir_out: o3.Irrep, order: int) -> Tensor:
    """Orthogonal basis of the symmetric equivariant maps ``Sym^order(irreps_in) -> ir_out``.

    Parameters
    ----------
    irreps_in : o3.Irreps
        The representation V whose powers are coupled (dimension d).
    ir_out : o3.Irrep
        Output irrep (dimension 2L+1).
    order : int
        Number of factors nu >= 1 (the body order of the product is nu + 1).

    Returns
    -------
    Tensor, shape (n_paths, 2L+1, d, ..., d) with ``order`` trailing axes, float64
        Each path is symmetric in its input axes and scaled so that
        ``sum_{i..} U[p, M, i..]^2 = 1`` for every output component M (for ``order=1`` the paths
        are exactly the selections of the copies of ``ir_out`` in V). n_paths may be 0.
    """
    irreps_in = o3.Irreps(irreps_in)
    ir_out = o3.Irrep(ir_out)
    if order < 1:
        raise ValueError(f"symmetric_coupling_basis: order must be >= 1, got {order}")
    return _cached_basis(str(irreps_in), str(ir_out), order).clone()


@functools.lru_cache(maxsize=None)
def _cached_basis(irreps_in_str: str, ir_out_str: str, order: int) -> Tensor:
    irreps_in = o3.Irreps(irreps_in_str)
    ir_out = o3.Irrep(ir_out_str)
    shape = (ir_out.dim,) + (irreps_in.dim,) * order
    basis: List[Tensor] = []
    for tree in _coupling_trees(irreps_in, ir_out, order):
        vector = _symmetrize(tree, order).reshape(-1)
        for previous in basis:
            vector = vector - torch.dot(previous, vector) * previous
        norm = vector.norm()
        if norm > _TOLERANCE * max(1.0, tree.norm().item()):
            basis.append(vector / norm)
    if len(basis) == 0:
        return torch.zeros((0,) + shape, dtype=torch.float64)
    return torch.stack(basis).reshape((len(basis),) + shape) * ir_out.dim**0.5
