// Backends of the mlff::neighbor_list op. The schema and dispatch live in ops.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mlff {
namespace neighbors {

// Full neighbour list of one or many systems.
//   positions   (n_atoms, 3) float32/float64, Angstrom
//   cell        (n_graphs, 3, 3) same dtype, lattice vectors as rows (ignored on open axes)
//   pbc         (n_graphs, 3) bool
//   batch       (n_atoms,) int64, system of each atom
//   cutoff      Angstrom
// Returns edge_index (2, n_edges) int64 as (sender, receiver) and cell_shifts (n_edges, 3)
// int64 such that r_ij = r_receiver - r_sender + cell_shifts @ cell[system].
std::tuple<at::Tensor, at::Tensor> neighbor_list_cpu(const at::Tensor& positions, const at::Tensor& cell,
                                                     const at::Tensor& pbc, const at::Tensor& batch, double cutoff);

// Each pair of the full list once (half list): for every (i, j, S) returned, the full list
// also holds (j, i, -S), which is not returned. Used by Verlet-skin reuse.
std::tuple<at::Tensor, at::Tensor> neighbor_pairs_cpu(const at::Tensor& positions, const at::Tensor& cell,
                                                      const at::Tensor& pbc, const at::Tensor& batch, double cutoff);

// The edges of an existing list (e.g. built with cutoff + skin) shorter than `cutoff`, with
// edge vectors r_j - r_i + offsets (offsets = cell_shifts @ cell, precomputed by the caller),
// computed in double. With `mirror`, the input lists each pair once and every kept edge is
// followed by its reverse (j, i, -S), giving a full list.
std::tuple<at::Tensor, at::Tensor> filter_neighbors_cpu(const at::Tensor& positions, const at::Tensor& edge_index,
                                                        const at::Tensor& cell_shifts, const at::Tensor& offsets,
                                                        double cutoff, bool mirror);

#ifdef MLFF_WITH_CUDA
std::tuple<at::Tensor, at::Tensor> neighbor_list_cuda(const at::Tensor& positions, const at::Tensor& cell,
                                                      const at::Tensor& pbc, const at::Tensor& batch, double cutoff);
#endif

}  // namespace neighbors
}  // namespace mlff
