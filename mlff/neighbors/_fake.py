"""Fake (meta) kernels of the mlff ops, so torch.compile and torch.export can trace them.

The number of edges depends on the data, so it is a fresh symbolic size.
"""

import torch

import mlff._ops  # noqa: F401


@torch.library.register_fake("mlff::neighbor_list")
def _neighbor_list_fake(positions, cell, pbc, batch, cutoff):
    n_edges = torch.library.get_ctx().new_dynamic_size()
    edge_index = positions.new_empty((2, n_edges), dtype=torch.int64)
    cell_shifts = positions.new_empty((n_edges, 3), dtype=torch.int64)
    return edge_index, cell_shifts


@torch.library.register_fake("mlff::filter_neighbors")
def _filter_neighbors_fake(positions, edge_index, cell_shifts, offsets, cutoff, mirror):
    n_kept = torch.library.get_ctx().new_dynamic_size()
    return edge_index.new_empty((2, n_kept)), cell_shifts.new_empty((n_kept, 3))


@torch.library.register_fake("mlff::neighbor_pairs")
def _neighbor_pairs_fake(positions, cell, pbc, batch, cutoff):
    return _neighbor_list_fake(positions, cell, pbc, batch, cutoff)
