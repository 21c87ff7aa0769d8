// Keeping the pairs of a neighbour list that lie within a (smaller) cutoff: the per-step work
// of Verlet-skin reuse, in one pass without temporaries.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

#include "neighbors.h"

namespace mlff {
namespace neighbors {

std::tuple<at::Tensor, at::Tensor> filter_neighbors_cpu(const at::Tensor& positions, const at::Tensor& cell,
                                                        const at::Tensor& batch, const at::Tensor& edge_index,
                                                        const at::Tensor& cell_shifts, double cutoff) {
    TORCH_CHECK_VALUE(positions.dim() == 2 && positions.size(1) == 3,
                      "filter_neighbors: positions must have shape (n_atoms, 3), got ", positions.sizes());
    TORCH_CHECK_VALUE(cell.dim() == 3 && cell.size(1) == 3 && cell.size(2) == 3,
                      "filter_neighbors: cell must have shape (n_graphs, 3, 3), got ", cell.sizes());
    TORCH_CHECK_VALUE(batch.dim() == 1 && batch.size(0) == positions.size(0) && batch.scalar_type() == at::kLong,
                      "filter_neighbors: batch must be int64 of shape (n_atoms,)");
    TORCH_CHECK_VALUE(edge_index.dim() == 2 && edge_index.size(0) == 2 && edge_index.scalar_type() == at::kLong,
                      "filter_neighbors: edge_index must be int64 of shape (2, n_edges), got ", edge_index.sizes());
    TORCH_CHECK_VALUE(cell_shifts.dim() == 2 && cell_shifts.size(0) == edge_index.size(1) &&
                          cell_shifts.size(1) == 3 && cell_shifts.scalar_type() == at::kLong,
                      "filter_neighbors: cell_shifts must be int64 of shape (n_edges, 3), got ", cell_shifts.sizes());
    TORCH_CHECK_VALUE(cutoff > 0.0, "filter_neighbors: cutoff must be positive, got ", cutoff);

    const at::Tensor pos = positions.to(at::kDouble).contiguous();
    const at::Tensor h = cell.to(at::kDouble).contiguous();
    const at::Tensor b = batch.contiguous();
    const at::Tensor edges = edge_index.contiguous();
    const at::Tensor shifts = cell_shifts.contiguous();
    const int64_t n_edges = edge_index.size(1);
    const int64_t n_atoms = positions.size(0);
    const int64_t n_graphs = cell.size(0);

    const double* p = pos.data_ptr<double>();
    const double* hd = h.data_ptr<double>();
    const int64_t* bd = b.data_ptr<int64_t>();
    const int64_t* sender = edges.data_ptr<int64_t>();
    const int64_t* receiver = sender + n_edges;
    const int64_t* s = shifts.data_ptr<int64_t>();
    const double cutoff2 = cutoff * cutoff;

    // indices are validated once, in a vectorisable pass, so the main loop has no checks
    int64_t lowest = 0, highest = -1;
    if (n_edges > 0) {
        lowest = sender[0];
        highest = sender[0];
        for (int64_t e = 0; e < 2 * n_edges; ++e) {
            lowest = std::min(lowest, sender[e]);
            highest = std::max(highest, sender[e]);
        }
        TORCH_CHECK_VALUE(lowest >= 0 && highest < n_atoms, "filter_neighbors: edge_index refers to atoms outside [0, ",
                          n_atoms, ")");
    }
    for (int64_t a = 0; a < n_atoms; ++a) {
        TORCH_CHECK_VALUE(bd[a] >= 0 && bd[a] < n_graphs, "filter_neighbors: batch values must lie in [0, ", n_graphs,
                          ")");
    }

    // branch-free compaction: every edge is written, the cursor advances only for kept ones
    std::vector<int64_t> kept(n_edges + 1);
    int64_t n_kept = 0;
    for (int64_t e = 0; e < n_edges; ++e) {
        const int64_t i = sender[e];
        const int64_t j = receiver[e];
        const double* c = hd + 9 * bd[i];
        const double s0 = static_cast<double>(s[3 * e]);
        const double s1 = static_cast<double>(s[3 * e + 1]);
        const double s2 = static_cast<double>(s[3 * e + 2]);
        const double dx = p[3 * j] - p[3 * i] + s0 * c[0] + s1 * c[3] + s2 * c[6];
        const double dy = p[3 * j + 1] - p[3 * i + 1] + s0 * c[1] + s1 * c[4] + s2 * c[7];
        const double dz = p[3 * j + 2] - p[3 * i + 2] + s0 * c[2] + s1 * c[5] + s2 * c[8];
        kept[n_kept] = e;
        n_kept += (dx * dx + dy * dy + dz * dz < cutoff2) ? 1 : 0;
    }

    auto options = at::TensorOptions().dtype(at::kLong);
    at::Tensor out_index = at::empty({2, n_kept}, options);
    at::Tensor out_shifts = at::empty({n_kept, 3}, options);
    int64_t* out_sender = out_index.data_ptr<int64_t>();
    int64_t* out_receiver = out_sender + n_kept;
    int64_t* out_s = out_shifts.data_ptr<int64_t>();
    for (int64_t k = 0; k < n_kept; ++k) {
        const int64_t e = kept[k];
        out_sender[k] = sender[e];
        out_receiver[k] = receiver[e];
        out_s[3 * k] = s[3 * e];
        out_s[3 * k + 1] = s[3 * e + 1];
        out_s[3 * k + 2] = s[3 * e + 2];
    }
    return {out_index, out_shifts};
}

}  // namespace neighbors
}  // namespace mlff
