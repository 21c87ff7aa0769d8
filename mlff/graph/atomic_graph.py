"""AtomicGraph: positions, species, cell and neighbour edges of one or many systems.

A batch of systems is one graph with disjoint components: atoms are concatenated, edges
index into the concatenated atoms, and ``batch`` says which system each atom belongs to.
Labels (energies, forces) travel apart from this type.
"""

from typing import List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from mlff.neighbors import neighbor_list


class AtomicGraph(NamedTuple):
    """Inputs of a potential, TorchScript- and export-friendly.

    Attributes
    ----------
    positions : Tensor, (n_atoms, 3), Angstrom, model dtype
    atomic_numbers : Tensor, (n_atoms,), int64
    cell : Tensor, (n_graphs, 3, 3), Angstrom, rows are lattice vectors; zeros if none
    pbc : Tensor, (n_graphs, 3), bool
    edge_index : Tensor, (2, n_edges), int64, (sender, receiver)
    cell_shifts : Tensor, (n_edges, 3), int64; r_ij = r_j - r_i + cell_shifts @ cell
    batch : Tensor, (n_atoms,), int64, system of each atom
    """

    positions: Tensor
    atomic_numbers: Tensor
    cell: Tensor
    pbc: Tensor
    edge_index: Tensor
    cell_shifts: Tensor
    batch: Tensor


def num_graphs(graph: AtomicGraph) -> int:
    """Number of systems in a (batched) graph."""
    return graph.cell.size(0)


def with_neighbors(graph: AtomicGraph, cutoff: float) -> AtomicGraph:
    """The same graph with edges recomputed by the compiled neighbour list."""
    edge_index, cell_shifts = neighbor_list(graph.positions, graph.cell, graph.pbc, cutoff, graph.batch)
    return graph._replace(edge_index=edge_index, cell_shifts=cell_shifts)


def from_atoms(
    atoms,
    cutoff: Optional[float] = None,
    dtype: torch.dtype = torch.float64,
    device: Optional[torch.device] = None,
) -> AtomicGraph:
    """Graph of one ``ase.Atoms`` (Angstrom), with edges when ``cutoff`` is given.

    A structure without pbc gets a zero cell, whatever ``atoms.cell`` holds.
    """
    positions = torch.as_tensor(np.asarray(atoms.get_positions()), dtype=dtype, device=device)
    numbers = torch.as_tensor(np.asarray(atoms.get_atomic_numbers()), dtype=torch.long, device=device)
    pbc = torch.as_tensor(np.asarray(atoms.get_pbc(), dtype=bool), device=device).reshape(1, 3)
    cell = torch.as_tensor(np.asarray(atoms.get_cell()), dtype=dtype, device=device).reshape(1, 3, 3)
    if not bool(pbc.any()):
        cell = torch.zeros_like(cell)
    graph = AtomicGraph(
        positions=positions,
        atomic_numbers=numbers,
        cell=cell,
        pbc=pbc,
        edge_index=torch.zeros(2, 0, dtype=torch.long, device=device),
        cell_shifts=torch.zeros(0, 3, dtype=torch.long, device=device),
        batch=torch.zeros(len(numbers), dtype=torch.long, device=device),
    )
    return with_neighbors(graph, cutoff) if cutoff is not None else graph


def collate(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """One batched graph from many: atoms concatenated, edge indices offset, batch set."""
    if len(graphs) == 0:
        raise ValueError("collate: no graphs given")
    offsets: List[int] = []
    total = 0
    for graph in graphs:
        offsets.append(total)
        total += graph.positions.size(0)
    batch_parts: List[Tensor] = []
    graph_index = 0
    for graph in graphs:
        batch_parts.append(graph.batch + graph_index)
        graph_index += graph.cell.size(0)
    return AtomicGraph(
        positions=torch.cat([g.positions for g in graphs]),
        atomic_numbers=torch.cat([g.atomic_numbers for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        edge_index=torch.cat([g.edge_index + offset for g, offset in zip(graphs, offsets)], dim=1),
        cell_shifts=torch.cat([g.cell_shifts for g in graphs]),
        batch=torch.cat(batch_parts),
    )
