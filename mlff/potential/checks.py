"""Input checks of a potential: refuse inputs that would otherwise turn into silent NaNs.

Non-finite positions or cells, and two atoms at the same position (an edge of zero length has
no direction, and radial bases like ``sin(k r) / r`` are 0/0 there), raise ValueError with the
offending atoms named. Under TorchScript the same message arrives as ``torch.jit.Error``.
"""

from typing import List

import torch
from torch import Tensor

from mlff.neighbors import edge_vectors

#: Two atoms closer than this (Angstrom) are taken to sit at the same position. Far below any
#: physical distance (about 0.5 Angstrom at least), far above rounding of positions near 0.
MIN_DISTANCE = 1.0e-6


def check_finite(positions: Tensor, cell: Tensor) -> None:
    """Raise ValueError if positions (n_atoms, 3) or cells (n_graphs, 3, 3) hold NaN or inf."""
    bad_atoms = ~torch.isfinite(positions).all(dim=1)
    if bool(bad_atoms.any()):
        atoms: List[int] = torch.nonzero(bad_atoms).flatten().tolist()
        raise ValueError("positions of atom(s) " + str(atoms[:10]) + " are NaN or infinite")
    bad_cells = ~torch.isfinite(cell).flatten(1).all(dim=1)
    if bool(bad_cells.any()):
        graphs: List[int] = torch.nonzero(bad_cells).flatten().tolist()
        raise ValueError("cell of system(s) " + str(graphs[:10]) + " holds NaN or infinite values")


def check_no_coincident_atoms(
    positions: Tensor,
    cell: Tensor,
    edge_index: Tensor,
    cell_shifts: Tensor,
    batch: Tensor,
    min_distance: float = MIN_DISTANCE,
) -> None:
    """Raise ValueError if an edge is shorter than ``min_distance`` (Angstrom): atoms at the same place."""
    if edge_index.size(1) == 0:
        return
    vectors = edge_vectors(positions.detach(), cell.detach(), edge_index, cell_shifts, batch)
    too_close = (vectors * vectors).sum(dim=1) < min_distance * min_distance
    if bool(too_close.any()):
        first = int(torch.nonzero(too_close)[0, 0])
        sender = int(edge_index[0, first])
        receiver = int(edge_index[1, first])
        raise ValueError(
            "atoms "
            + str(sender)
            + " and "
            + str(receiver)
            + " (or a periodic image) are at the same position (closer than "
            + str(min_distance)
            + " Angstrom)"
        )
