"""Verlet-skin reuse of neighbour lists across MD steps.

A list built with ``cutoff + skin`` stays a superset of the true list until some atom has
moved by more than ``skin / 2`` (two atoms approaching each other by ``skin`` in total). Each
call filters the stored list down to the pairs within ``cutoff``, which gives exactly the
pairs of a fresh build.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from mlff.neighbors.neighbor_list import edge_vectors, neighbor_list, one_per_pair


class VerletNeighborList(torch.nn.Module):
    """Stateful neighbour list that rebuilds only when needed.

    Rebuilds when an atom has moved more than ``skin / 2`` since the last build, or when the
    cell, the periodicity, the number of atoms or the batch changed. Between rebuilds it keeps
    each stored pair once, with its image offset vector, and each call keeps those within the
    cutoff and adds their reverses (one fused pass in C++ on the CPU).

    Parameters
    ----------
    cutoff : float
        Interaction cutoff in Angstrom.
    skin : float
        Extra distance in Angstrom kept in the stored list (0 rebuilds every call).
    exact : bool
        True (default): return exactly the pairs within ``cutoff``, as a fresh build would.
        False: return the stored list itself (pairs within ``cutoff + skin``), a superset whose
        pairs within ``cutoff`` are exactly those of a fresh build, as MD engines' Verlet lists
        are; the caller ignores longer edges (mlff models' envelopes vanish beyond the cutoff).
        Between rebuilds this costs only the displacement check.
    """

    n_builds: int

    def __init__(self, cutoff: float, skin: float = 1.0, exact: bool = True):
        super().__init__()
        if not cutoff > 0.0:
            raise ValueError(f"VerletNeighborList: cutoff must be positive, got {cutoff}")
        if not skin >= 0.0:
            raise ValueError(f"VerletNeighborList: skin must be non-negative, got {skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.exact = exact
        self.n_builds = 0
        self._full_edge_index = torch.zeros(2, 0, dtype=torch.long)  # stored list, both directions
        self._full_cell_shifts = torch.zeros(0, 3, dtype=torch.long)
        self._positions = torch.zeros(0, 3)
        self._cell = torch.zeros(0, 3, 3)
        self._pbc = torch.zeros(0, 3, dtype=torch.bool)
        self._batch = torch.zeros(0, dtype=torch.long)
        self._edge_index = torch.zeros(2, 0, dtype=torch.long)  # each pair once
        self._cell_shifts = torch.zeros(0, 3, dtype=torch.long)
        self._offsets = torch.zeros(0, 3, dtype=torch.float64)  # cell_shifts @ cell, Angstrom

    def needs_rebuild(self, positions: Tensor, cell: Tensor, pbc: Tensor, batch: Tensor) -> bool:
        """Whether the stored list may miss a pair within the cutoff."""
        if self.n_builds == 0 or positions.shape != self._positions.shape:
            return True
        if positions.device != self._positions.device or positions.dtype != self._positions.dtype:
            return True
        if cell.shape != self._cell.shape or not torch.equal(cell, self._cell):
            return True
        if not torch.equal(pbc, self._pbc) or not torch.equal(batch, self._batch):
            return True
        if positions.size(0) == 0:
            return False
        displacement = torch.linalg.vector_norm(positions.detach() - self._positions, dim=1).max()
        return bool(displacement > 0.5 * self.skin)

    def _rebuild(self, positions: Tensor, cell: Tensor, pbc: Tensor, batch: Tensor) -> None:
        cutoff = self.cutoff + self.skin
        self._positions = positions.clone()
        self._cell = cell.clone()
        self._pbc = pbc.clone()
        self._batch = batch.clone()
        self.n_builds += 1
        if not self.exact:  # the stored list is the answer: no half list, no offsets to filter with
            self._full_edge_index, self._full_cell_shifts = neighbor_list(positions, cell, pbc, cutoff, batch)
            return
        if positions.device.type == "cpu":
            edge_index, cell_shifts = torch.ops.mlff.neighbor_pairs(positions, cell, pbc, batch, cutoff)
        else:
            edge_index, cell_shifts = neighbor_list(positions, cell, pbc, cutoff, batch)
            pairs = one_per_pair(edge_index, cell_shifts)
            edge_index, cell_shifts = edge_index[:, pairs].contiguous(), cell_shifts[pairs].contiguous()
        self._edge_index = edge_index
        self._cell_shifts = cell_shifts
        shifts = cell_shifts.to(torch.float64)
        if cell.size(0) == 1:
            self._offsets = shifts @ cell[0].to(torch.float64)
        else:
            self._offsets = torch.einsum("ei,eij->ej", shifts, cell.to(torch.float64)[batch[edge_index[0]]])

    def forward(
        self, positions: Tensor, cell: Tensor, pbc: Tensor, batch: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        """Same arguments and result as :func:`mlff.neighbors.neighbor_list` (without cutoff)."""
        positions = positions.detach()
        if cell.dim() == 2:
            cell = cell.unsqueeze(0)
        if pbc.dim() == 1:
            pbc = pbc.unsqueeze(0)
        if pbc.dtype != torch.bool:
            pbc = pbc != 0
        cell = cell.detach().to(positions.dtype)
        if batch is None:
            batch = torch.zeros(positions.size(0), dtype=torch.long, device=positions.device)
        if self.needs_rebuild(positions, cell, pbc, batch):
            self._rebuild(positions, cell, pbc, batch)
        if not self.exact:
            return self._full_edge_index, self._full_cell_shifts
        return filter_neighbors(positions, self._edge_index, self._cell_shifts, self._offsets, self.cutoff, True)


def filter_neighbors(
    positions: Tensor, edge_index: Tensor, cell_shifts: Tensor, offsets: Tensor, cutoff: float, mirror: bool
) -> Tuple[Tensor, Tensor]:
    """The edges whose vector ``r_j - r_i + offsets`` is shorter than ``cutoff`` (in float64).

    Parameters
    ----------
    positions : Tensor, (n_atoms, 3), Angstrom
    edge_index, cell_shifts : Tensor, (2, n_edges) and (n_edges, 3), int64
    offsets : Tensor, (n_edges, 3), Angstrom: ``cell_shifts @ cell`` of each edge
    cutoff : float, Angstrom
    mirror : bool
        The input lists each pair once; every kept edge is followed by its reverse.
    """
    if positions.device.type == "cpu":
        return torch.ops.mlff.filter_neighbors(positions, edge_index, cell_shifts, offsets, float(cutoff), mirror)
    vectors = positions[edge_index[1]].to(torch.float64) - positions[edge_index[0]].to(torch.float64) + offsets
    within = (vectors * vectors).sum(dim=1) < cutoff * cutoff
    kept_index = edge_index[:, within]
    kept_shifts = cell_shifts[within]
    if not mirror:
        return kept_index, kept_shifts
    both_index = torch.stack([kept_index, kept_index.flip(0)], dim=2).reshape(2, -1)
    both_shifts = torch.stack([kept_shifts, -kept_shifts], dim=1).reshape(-1, 3)
    return both_index, both_shifts
