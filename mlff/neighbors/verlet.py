"""Verlet-skin reuse of neighbour lists across MD steps.

A list built with ``cutoff + skin`` stays a superset of the true list until some atom has
moved by more than ``skin / 2`` (two atoms approaching each other by ``skin`` in total). Each
call filters the stored list down to the pairs within ``cutoff``, which gives exactly the
pairs of a fresh build.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from mlff.neighbors.neighbor_list import edge_vectors, neighbor_list


class VerletNeighborList(torch.nn.Module):
    """Stateful neighbour list that rebuilds only when needed.

    Rebuilds when an atom has moved more than ``skin / 2`` since the last build, or when the
    cell, the periodicity, the number of atoms or the batch changed.

    Parameters
    ----------
    cutoff : float
        Interaction cutoff in Angstrom.
    skin : float
        Extra distance in Angstrom kept in the stored list (0 rebuilds every call).
    """

    n_builds: int

    def __init__(self, cutoff: float, skin: float = 1.0):
        super().__init__()
        if not cutoff > 0.0:
            raise ValueError(f"VerletNeighborList: cutoff must be positive, got {cutoff}")
        if not skin >= 0.0:
            raise ValueError(f"VerletNeighborList: skin must be non-negative, got {skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.n_builds = 0
        self._positions = torch.zeros(0, 3)
        self._cell = torch.zeros(0, 3, 3)
        self._pbc = torch.zeros(0, 3, dtype=torch.bool)
        self._batch = torch.zeros(0, dtype=torch.long)
        self._edge_index = torch.zeros(2, 0, dtype=torch.long)
        self._cell_shifts = torch.zeros(0, 3, dtype=torch.long)

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

    def forward(
        self, positions: Tensor, cell: Tensor, pbc: Tensor, batch: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        """Same arguments and result as :func:`mlff.neighbors.neighbor_list` (without cutoff)."""
        if cell.dim() == 2:
            cell = cell.unsqueeze(0)
        if pbc.dim() == 1:
            pbc = pbc.unsqueeze(0)
        if pbc.dtype != torch.bool:
            pbc = pbc != 0
        cell = cell.to(positions.dtype)
        if batch is None:
            batch = torch.zeros(positions.size(0), dtype=torch.long, device=positions.device)
        if self.needs_rebuild(positions, cell, pbc, batch):
            edge_index, cell_shifts = neighbor_list(positions.detach(), cell.detach(), pbc, self.cutoff + self.skin, batch)
            self._edge_index = edge_index
            self._cell_shifts = cell_shifts
            self._positions = positions.detach().clone()
            self._cell = cell.detach().clone()
            self._pbc = pbc.clone()
            self._batch = batch.clone()
            self.n_builds += 1
        return filter_neighbors(positions.detach(), cell.detach(), batch, self._edge_index, self._cell_shifts, self.cutoff)


def filter_neighbors(
    positions: Tensor, cell: Tensor, batch: Tensor, edge_index: Tensor, cell_shifts: Tensor, cutoff: float
) -> Tuple[Tensor, Tensor]:
    """The edges of a list whose length (computed in float64) is below ``cutoff``.

    Shapes as in :func:`mlff.neighbors.neighbor_list`; ``cell`` is (n_graphs, 3, 3). One fused
    pass in C++ on the CPU, plain torch elsewhere.
    """
    if positions.device.type == "cpu":
        return torch.ops.mlff.filter_neighbors(positions, cell, batch, edge_index, cell_shifts, float(cutoff))
    vectors = edge_vectors(positions.to(torch.float64), cell.to(torch.float64), edge_index, cell_shifts, batch)
    within = (vectors * vectors).sum(dim=1) < cutoff * cutoff
    return edge_index[:, within], cell_shifts[within]
