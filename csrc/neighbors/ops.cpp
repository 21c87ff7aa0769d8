// Registration of the mlff operator library with the PyTorch dispatcher. Loading this
// library (import mlff, or torch.ops.load_library) makes torch.ops.mlff.* available in eager
// mode, TorchScript, torch.compile and torch.export; fake kernels are registered in Python
// (mlff/neighbors/_fake.py).
#include <torch/library.h>

#include "neighbors.h"

TORCH_LIBRARY(mlff, m) {
    m.def(
        "neighbor_list(Tensor positions, Tensor cell, Tensor pbc, Tensor batch, float cutoff)"
        " -> (Tensor edge_index, Tensor cell_shifts)");
    m.def(
        "neighbor_pairs(Tensor positions, Tensor cell, Tensor pbc, Tensor batch, float cutoff)"
        " -> (Tensor edge_index, Tensor cell_shifts)");
    m.def(
        "filter_neighbors(Tensor positions, Tensor edge_index, Tensor cell_shifts, Tensor offsets, float cutoff,"
        " bool mirror) -> (Tensor edge_index, Tensor cell_shifts)");
}

TORCH_LIBRARY_IMPL(mlff, CPU, m) {
    m.impl("neighbor_list", &mlff::neighbors::neighbor_list_cpu);
    m.impl("neighbor_pairs", &mlff::neighbors::neighbor_pairs_cpu);
    m.impl("filter_neighbors", &mlff::neighbors::filter_neighbors_cpu);
}

#ifdef MLFF_WITH_CUDA
TORCH_LIBRARY_IMPL(mlff, CUDA, m) { m.impl("neighbor_list", &mlff::neighbors::neighbor_list_cuda); }
#endif
