"""The public neighbour-list entry point over ``torch.ops.mlff.neighbor_list``."""

from typing import Optional, Tuple

import torch
from torch import Tensor

import mlff._ops  # noqa: F401  (loads torch.ops.mlff)


def neighbor_list(
    positions: Tensor,
    cell: Tensor,
    pbc: Tensor,
    cutoff: float,
    batch: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Full neighbour list (both directions) of one or many systems.

    Runs the compiled op on the device of ``positions`` (C++ cell list on CPU, CUDA kernel on
    GPU). Scriptable with TorchScript and traceable by torch.compile / torch.export.

    Parameters
    ----------
    positions : Tensor, shape (n_atoms, 3), float32 or float64
        Cartesian positions in Angstrom; atoms may lie outside the cell.
    cell : Tensor, shape (3, 3) or (n_graphs, 3, 3)
        Lattice vectors as rows, Angstrom. Ignored along open axes (zeros are fine there).
    pbc : Tensor, shape (3,) or (n_graphs, 3), bool
        Periodicity of each axis.
    cutoff : float
        Cutoff radius in Angstrom; pairs with distance strictly below it are returned.
    batch : Tensor, shape (n_atoms,), int64, optional
        System index of each atom; required when ``cell`` holds several systems.

    Returns
    -------
    edge_index : Tensor, shape (2, n_edges), int64
        (sender, receiver) atom indices. An atom pairs with itself only through a nonzero
        periodic image.
    cell_shifts : Tensor, shape (n_edges, 3), int64
        Integer image offsets S with ``r_ij = r_j - r_i + S @ cell[system]``.
    """
    if cell.dim() == 2:
        cell = cell.unsqueeze(0)
    if pbc.dim() == 1:
        pbc = pbc.unsqueeze(0)
    if cell.is_floating_point() and cell.dtype != positions.dtype:
        cell = cell.to(positions.dtype)
    if pbc.dtype != torch.bool:
        pbc = pbc != 0
    if batch is None:
        if cell.dim() == 3 and cell.size(0) != 1:
            raise ValueError(
                "neighbor_list: cell holds "
                + str(cell.size(0))
                + " systems but no batch vector was given; pass batch (n_atoms,) with the system of each atom"
            )
        batch = torch.zeros(positions.size(0), dtype=torch.long, device=positions.device)
    return torch.ops.mlff.neighbor_list(positions, cell, pbc, batch, float(cutoff))


def edge_vectors(
    positions: Tensor,
    cell: Tensor,
    edge_index: Tensor,
    cell_shifts: Tensor,
    batch: Optional[Tensor] = None,
) -> Tensor:
    """Edge vectors ``r_j - r_i + S @ cell``, differentiable in positions and cell.

    Parameters
    ----------
    positions : Tensor, shape (n_atoms, 3), Angstrom
    cell : Tensor, shape (3, 3) or (n_graphs, 3, 3), Angstrom
    edge_index : Tensor, shape (2, n_edges), int64
    cell_shifts : Tensor, shape (n_edges, 3), integer
    batch : Tensor, shape (n_atoms,), int64, optional (one system when omitted)

    Returns
    -------
    Tensor, shape (n_edges, 3), Angstrom, dtype of positions
    """
    sender = edge_index[0]
    receiver = edge_index[1]
    shifts = cell_shifts.to(positions.dtype)
    if cell.dim() == 2:
        offsets = shifts @ cell
    elif batch is None:
        offsets = shifts @ cell[0]
    else:
        offsets = torch.einsum("ei,eij->ej", shifts, cell[batch[sender]])
    return positions[receiver] - positions[sender] + offsets


def one_per_pair(edge_index: Tensor, cell_shifts: Tensor) -> Tensor:
    """Indices (n_pairs,) of one edge per pair of a full list: (i, j, S) with i < j, or an atom
    with its own image (i == j) at a lexicographically positive shift S."""
    sender, receiver = edge_index[0], edge_index[1]
    s0, s1, s2 = cell_shifts[:, 0], cell_shifts[:, 1], cell_shifts[:, 2]
    positive_shift = (s0 > 0) | ((s0 == 0) & ((s1 > 0) | ((s1 == 0) & (s2 > 0))))
    return torch.nonzero((sender < receiver) | ((sender == receiver) & positive_shift)).flatten()
