// Keeping the pairs of a neighbour list that lie within a (smaller) cutoff: the per-step work
// of Verlet-skin reuse, in one pass without temporaries.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

#include "neighbors.h"

namespace mlff {
namespace neighbors {

std::tuple<at::Tensor, at::Tensor> filter_neighbors_cpu(const at::Tensor& positions, const at::Tensor& edge_index,
                                                        const at::Tensor& cell_shifts, const at::Tensor& offsets,
                                                        double cutoff, bool mirror) {
    TORCH_CHECK_VALUE(positions.dim() == 2 && positions.size(1) == 3,
                      "filter_neighbors: positions must have shape (n_atoms, 3), got ", positions.sizes());
    TORCH_CHECK_VALUE(edge_index.dim() == 2 && edge_index.size(0) == 2 && edge_index.scalar_type() == at::kLong,
                      "filter_neighbors: edge_index must be int64 of shape (2, n_edges), got ", edge_index.sizes());
    const int64_t n_edges = edge_index.size(1);
    TORCH_CHECK_VALUE(cell_shifts.dim() == 2 && cell_shifts.size(0) == n_edges && cell_shifts.size(1) == 3 &&
                          cell_shifts.scalar_type() == at::kLong,
                      "filter_neighbors: cell_shifts must be int64 of shape (n_edges, 3), got ", cell_shifts.sizes());
    TORCH_CHECK_VALUE(offsets.dim() == 2 && offsets.size(0) == n_edges && offsets.size(1) == 3,
                      "filter_neighbors: offsets must have shape (n_edges, 3), got ", offsets.sizes());
    TORCH_CHECK_VALUE(cutoff > 0.0, "filter_neighbors: cutoff must be positive, got ", cutoff);

    const at::Tensor pos = positions.to(at::kDouble).contiguous();
    const at::Tensor off = offsets.to(at::kDouble).contiguous();
    const at::Tensor edges = edge_index.contiguous();
    const at::Tensor shifts = cell_shifts.contiguous();
    const int64_t n_atoms = positions.size(0);
    const double* p = pos.data_ptr<double>();
    const double* o = off.data_ptr<double>();
    const int64_t* sender = edges.data_ptr<int64_t>();
    const int64_t* receiver = sender + n_edges;
    const int64_t* s = shifts.data_ptr<int64_t>();
    const double cutoff2 = cutoff * cutoff;

    // indices are validated once, in a vectorisable pass, so the main loop has no checks
    if (n_edges > 0) {
        int64_t lowest = sender[0], highest = sender[0];
        for (int64_t e = 0; e < 2 * n_edges; ++e) {
            lowest = std::min(lowest, sender[e]);
            highest = std::max(highest, sender[e]);
        }
        TORCH_CHECK_VALUE(lowest >= 0 && highest < n_atoms, "filter_neighbors: edge_index refers to atoms outside [0, ",
                          n_atoms, ")");
    }

    // branch-free compaction: every edge is written, the cursor advances only for kept ones
    std::vector<int64_t> kept(n_edges + 1);
    int64_t n_kept = 0;
    for (int64_t e = 0; e < n_edges; ++e) {
        const double* pi = p + 3 * sender[e];
        const double* pj = p + 3 * receiver[e];
        const double dx = pj[0] - pi[0] + o[3 * e];
        const double dy = pj[1] - pi[1] + o[3 * e + 1];
        const double dz = pj[2] - pi[2] + o[3 * e + 2];
        kept[n_kept] = e;
        n_kept += (dx * dx + dy * dy + dz * dz < cutoff2) ? 1 : 0;
    }

    const int64_t copies = mirror ? 2 : 1;
    const int64_t n_out = copies * n_kept;
    auto options = at::TensorOptions().dtype(at::kLong);
    at::Tensor out_index = at::empty({2, n_out}, options);
    at::Tensor out_shifts = at::empty({n_out, 3}, options);
    int64_t* out_sender = out_index.data_ptr<int64_t>();
    int64_t* out_receiver = out_sender + n_out;
    int64_t* out_s = out_shifts.data_ptr<int64_t>();
    for (int64_t k = 0; k < n_kept; ++k) {
        const int64_t e = kept[k];
        const int64_t a = copies * k;
        out_sender[a] = sender[e];
        out_receiver[a] = receiver[e];
        out_s[3 * a] = s[3 * e];
        out_s[3 * a + 1] = s[3 * e + 1];
        out_s[3 * a + 2] = s[3 * e + 2];
        if (mirror) {
            out_sender[a + 1] = receiver[e];
            out_receiver[a + 1] = sender[e];
            out_s[3 * a + 3] = -s[3 * e];
            out_s[3 * a + 4] = -s[3 * e + 1];
            out_s[3 * a + 5] = -s[3 * e + 2];
        }
    }
    return {out_index, out_shifts};
}

}  // namespace neighbors
}  // namespace mlff
