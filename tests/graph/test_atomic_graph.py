"""AtomicGraph from ase.Atoms, batching by collate, neighbours by with_neighbors."""

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mlff.graph import AtomicGraph, collate, from_atoms, with_neighbors
from mlff.graph.atomic_graph import num_graphs
from tests.structures import ethanol, silicon, water, water_box

CUTOFF = 3.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_atoms_shapes_and_dtypes(dtype):
    atoms = water_box()
    graph = from_atoms(atoms, CUTOFF, dtype)
    n = len(atoms)
    assert graph.positions.shape == (n, 3) and graph.positions.dtype == dtype
    assert graph.atomic_numbers.tolist() == atoms.numbers.tolist() and graph.atomic_numbers.dtype == torch.long
    assert graph.cell.shape == (1, 3, 3) and graph.cell.dtype == dtype
    assert graph.pbc.tolist() == [[True, True, True]]
    assert graph.edge_index.shape[0] == 2 and graph.edge_index.dtype == torch.long
    assert graph.cell_shifts.shape == (graph.edge_index.size(1), 3) and graph.cell_shifts.dtype == torch.long
    assert graph.batch.tolist() == [0] * n
    assert num_graphs(graph) == 1


def test_open_system_has_zero_cell_whatever_atoms_cell_holds():
    atoms = water()
    atoms.set_cell(np.eye(3) * 10.0)
    graph = from_atoms(atoms, CUTOFF)
    assert torch.all(graph.cell == 0.0) and not graph.pbc.any()


def test_without_cutoff_there_are_no_edges():
    graph = from_atoms(ethanol())
    assert graph.edge_index.shape == (2, 0) and graph.cell_shifts.shape == (0, 3)


@pytest.mark.parametrize("make", [ethanol, silicon, water_box])
def test_edges_match_ase(make):
    atoms = make()
    graph = from_atoms(atoms, CUTOFF)
    i, j, shifts = ase_neighbor_list("ijS", atoms, CUTOFF)
    expected = sorted(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist())))
    actual = sorted(
        zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist(), map(tuple, graph.cell_shifts.tolist()))
    )
    assert actual == expected


def test_collate_offsets_edges_and_sets_batch():
    systems = [water(), silicon(), ethanol()]
    graphs = [from_atoms(atoms, CUTOFF) for atoms in systems]
    batch = collate(graphs)
    sizes = [len(atoms) for atoms in systems]
    assert isinstance(batch, AtomicGraph)
    assert batch.positions.shape == (sum(sizes), 3)
    assert batch.cell.shape == (3, 3, 3) and batch.pbc.shape == (3, 3)
    assert batch.batch.tolist() == [0] * sizes[0] + [1] * sizes[1] + [2] * sizes[2]
    assert batch.edge_index.size(1) == sum(g.edge_index.size(1) for g in graphs)
    offset = 0
    start = 0
    for graph, size in zip(graphs, sizes):
        n_edges = graph.edge_index.size(1)
        assert torch.equal(batch.edge_index[:, start : start + n_edges], graph.edge_index + offset)
        offset += size
        start += n_edges
    # edges never cross systems
    assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])


def test_collate_of_batches_keeps_graph_indices():
    first = collate([from_atoms(water(), CUTOFF), from_atoms(silicon(), CUTOFF)])
    both = collate([first, from_atoms(ethanol(), CUTOFF)])
    assert num_graphs(both) == 3
    assert both.batch.max().item() == 2


def test_collate_nothing_is_an_error():
    with pytest.raises(ValueError):
        collate([])


def test_with_neighbors_rebuilds_edges_of_a_batch():
    systems = [water_box(), ethanol()]
    bare = collate([from_atoms(atoms) for atoms in systems])
    rebuilt = with_neighbors(bare, CUTOFF)
    expected = collate([from_atoms(atoms, CUTOFF) for atoms in systems])
    assert rebuilt.edge_index.size(1) == expected.edge_index.size(1)
    as_set = lambda g: sorted(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist(), map(tuple, g.cell_shifts.tolist())))
    assert as_set(rebuilt) == as_set(expected)
