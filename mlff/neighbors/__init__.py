"""Neighbour lists: which atom pairs lie within a cutoff, periodic images included.

The convention, used everywhere in mlff: for an edge (sender i, receiver j) with integer
image offsets S, the edge vector is ``r_ij = r_j - r_i + S @ cell`` (Angstrom). The compiled
op returns integers only; vectors are built in PyTorch by :func:`edge_vectors`, so forces
and stress come from autograd with no custom backward.
"""

from mlff.neighbors import _fake  # noqa: F401  (registers fake kernels for torch.compile/export)
from mlff.neighbors.neighbor_list import edge_vectors, neighbor_list, one_per_pair
from mlff.neighbors.verlet import VerletNeighborList

__all__ = ["neighbor_list", "edge_vectors", "one_per_pair", "VerletNeighborList"]
