// Input validation shared by every backend of mlff::neighbor_list. Errors surface in Python
// as ValueError / TypeError with a message that names the argument and the fix.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace mlff {
namespace neighbors {

// The largest number of pairs one call may return: indices and counts downstream (scatter
// kernels, LAMMPS, CUDA launch sizes) are 32-bit.
constexpr int64_t kMaxPairs = std::numeric_limits<int32_t>::max();

inline void check_inputs(const at::Tensor& positions, const at::Tensor& cell, const at::Tensor& pbc,
                         const at::Tensor& batch, double cutoff) {
    TORCH_CHECK_VALUE(std::isfinite(cutoff) && cutoff > 0.0,
                      "neighbor_list: cutoff must be a positive finite number of Angstrom, got ", cutoff);
    TORCH_CHECK_VALUE(positions.dim() == 2 && positions.size(1) == 3,
                      "neighbor_list: positions must have shape (n_atoms, 3), got ", positions.sizes());
    TORCH_CHECK_TYPE(positions.scalar_type() == at::kFloat || positions.scalar_type() == at::kDouble,
                     "neighbor_list: positions must be float32 or float64, got ", positions.scalar_type());
    TORCH_CHECK_VALUE(cell.dim() == 3 && cell.size(1) == 3 && cell.size(2) == 3,
                      "neighbor_list: cell must have shape (n_graphs, 3, 3), got ", cell.sizes());
    TORCH_CHECK_TYPE(cell.scalar_type() == positions.scalar_type(),
                     "neighbor_list: cell dtype (", cell.scalar_type(), ") must match positions dtype (",
                     positions.scalar_type(), ")");
    const int64_t n_graphs = cell.size(0);
    TORCH_CHECK_VALUE(pbc.dim() == 2 && pbc.size(0) == n_graphs && pbc.size(1) == 3,
                      "neighbor_list: pbc must have shape (n_graphs, 3) = (", n_graphs, ", 3), got ", pbc.sizes());
    TORCH_CHECK_TYPE(pbc.scalar_type() == at::kBool, "neighbor_list: pbc must be a bool tensor, got ",
                     pbc.scalar_type());
    TORCH_CHECK_VALUE(batch.dim() == 1 && batch.size(0) == positions.size(0),
                      "neighbor_list: batch must have shape (n_atoms,) = (", positions.size(0), ",), got ",
                      batch.sizes());
    TORCH_CHECK_TYPE(batch.scalar_type() == at::kLong, "neighbor_list: batch must be int64, got ",
                     batch.scalar_type());
    const auto device = positions.device();
    TORCH_CHECK_VALUE(cell.device() == device && pbc.device() == device && batch.device() == device,
                      "neighbor_list: positions, cell, pbc and batch must be on one device; got positions on ",
                      device, ", cell on ", cell.device(), ", pbc on ", pbc.device(), ", batch on ", batch.device());
    if (positions.size(0) > 0) {
        TORCH_CHECK_VALUE(at::isfinite(positions).all().item<bool>(),
                          "neighbor_list: positions contain NaN or infinite values; check the structure "
                          "(an exploding MD run or an unreadable file)");
        TORCH_CHECK_VALUE(n_graphs > 0, "neighbor_list: atoms were given but cell has no graphs");
        const int64_t lowest = batch.min().item<int64_t>();
        const int64_t highest = batch.max().item<int64_t>();
        TORCH_CHECK_VALUE(lowest >= 0 && highest < n_graphs, "neighbor_list: batch values must lie in [0, ",
                          n_graphs, ") (one per cell), got values in [", lowest, ", ", highest, "]");
    }
}

// An upper-range estimate of the number of pairs of one system, used to refuse requests that
// cannot fit (e.g. a 2 Angstrom cell with a 500 Angstrom cutoff) before allocating anything.
//   lengths: per axis, the cell height (periodic) or the extent of the atoms (open), Angstrom
inline double estimated_pairs(int64_t n_atoms, const double lengths[3], const bool periodic[3], double cutoff) {
    double volume = 1.0;
    for (int k = 0; k < 3; ++k) {
        volume *= periodic[k] ? lengths[k] : std::max(lengths[k], 2.0 * cutoff);
    }
    const double sphere = 4.0 / 3.0 * M_PI * cutoff * cutoff * cutoff;
    const double n = static_cast<double>(n_atoms);
    return n * n * sphere / volume;
}

}  // namespace neighbors
}  // namespace mlff
