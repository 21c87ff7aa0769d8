// O(N) cell-list neighbour search on the CPU.
//
// Per system: atoms are wrapped into the cell along periodic axes, sorted into bins of about
// cutoff / kBinsPerCutoff, and every bin is compared with the bins of a half stencil (each
// unordered pair of bins once, images included); every pair found is emitted in both
// directions. Distances are computed in double whatever the input dtype.
#include "neighbors.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "checks.h"
#include "geometry.h"

namespace mlff {
namespace neighbors {
namespace {

// Bins are about cutoff / 2 wide; the stencil then reaches 2 bins each way. Compared with
// cutoff-wide bins this checks 15.6 instead of 27 cutoff^3 of candidates per atom.
constexpr double kBinsPerCutoff = 2.0;

struct EdgeBuffer {
    bool full_list = true;  // emit (j, i, -S) after every (i, j, S)
    std::vector<int64_t> sender;
    std::vector<int64_t> receiver;
    std::vector<int64_t> shift;  // 3 per edge

    int64_t size() const { return static_cast<int64_t>(sender.size()); }
    void reserve(int64_t n) {
        sender.reserve(n);
        receiver.reserve(n);
        shift.reserve(3 * n);
    }
    inline void add_pair(int64_t i, int64_t j, int64_t s0, int64_t s1, int64_t s2) {
        sender.push_back(i);
        receiver.push_back(j);
        shift.push_back(s0);
        shift.push_back(s1);
        shift.push_back(s2);
        if (!full_list) return;
        sender.push_back(j);
        receiver.push_back(i);
        shift.push_back(-s0);
        shift.push_back(-s1);
        shift.push_back(-s2);
    }
};

// Atoms of one system sorted by bin, structure of arrays.
struct BinnedAtoms {
    std::vector<double> x, y, z;       // wrapped Cartesian positions, Angstrom
    std::vector<int64_t> index;        // global atom index
    std::vector<int64_t> image;        // 3 per atom: lattice vector subtracted when wrapping
    std::vector<int64_t> bin_start;    // n_bins + 1 offsets into the arrays above
    int64_t n_bins[3];
};

void search_one_system(const double* positions, const std::vector<int64_t>& atoms, const Mat3& cell,
                       const std::array<bool, 3>& pbc, double cutoff, int64_t graph, EdgeBuffer& edges) {
    const int64_t n = static_cast<int64_t>(atoms.size());
    if (n == 0) return;
    const SystemBasis basis = make_basis(cell, pbc);
    TORCH_CHECK_VALUE(basis.error.empty(), "neighbor_list: system ", graph, ": ", basis.error,
                      "; give three linearly independent lattice vectors (rows of cell) for periodic axes");

    // fractional coordinates, wrapped along periodic axes
    std::vector<double> fractional(3 * n);
    std::vector<int64_t> image(3 * n, 0);
    double lower[3], upper[3];
    for (int k = 0; k < 3; ++k) {
        lower[k] = pbc[k] ? 0.0 : std::numeric_limits<double>::infinity();
        upper[k] = pbc[k] ? 1.0 : -std::numeric_limits<double>::infinity();
    }
    const Mat3& inv = basis.inverse_basis;
    for (int64_t a = 0; a < n; ++a) {
        const double* r = positions + 3 * atoms[a];
        for (int k = 0; k < 3; ++k) {
            double s = r[0] * inv[0][k] + r[1] * inv[1][k] + r[2] * inv[2][k];
            if (pbc[k]) {
                const double whole = std::floor(s);
                image[3 * a + k] = static_cast<int64_t>(whole);
                s -= whole;
            } else {
                lower[k] = std::min(lower[k], s);
                upper[k] = std::max(upper[k], s);
            }
            fractional[3 * a + k] = s;
        }
    }

    // bin counts: about cutoff / kBinsPerCutoff wide, at most a few bins per atom
    double length[3];
    int64_t n_bins[3];
    for (int k = 0; k < 3; ++k) {
        length[k] = (upper[k] - lower[k]) * basis.heights[k];
        n_bins[k] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(length[k] * kBinsPerCutoff / cutoff)));
    }
    const double pair_estimate = estimated_pairs(n, length, pbc.data(), cutoff);
    TORCH_CHECK_VALUE(pair_estimate < static_cast<double>(kMaxPairs),
                      "neighbor_list: system ", graph, " would have about ", static_cast<int64_t>(pair_estimate),
                      " pairs within the cutoff of ", cutoff, " A, more than the 2^31 - 1 supported; use a smaller "
                      "cutoff or check the cell (is it in Angstrom?)");
    const int64_t max_bins = std::max<int64_t>(8, 2 * n);
    while (n_bins[0] * n_bins[1] * n_bins[2] > max_bins) {
        const int k = static_cast<int>(std::max_element(n_bins, n_bins + 3) - n_bins);
        n_bins[k] = std::max<int64_t>(1, n_bins[k] / 2);
    }
    double bin_width[3];
    int64_t reach[3];  // bins to search each way
    for (int k = 0; k < 3; ++k) {
        bin_width[k] = length[k] / static_cast<double>(n_bins[k]);
        reach[k] = bin_width[k] > 0.0 ? static_cast<int64_t>(std::ceil(cutoff / bin_width[k] * (1.0 + 1e-12))) : 0;
        if (!pbc[k]) reach[k] = std::min(reach[k], n_bins[k] - 1);
    }

    // counting sort of atoms into bins
    const int64_t total_bins = n_bins[0] * n_bins[1] * n_bins[2];
    std::vector<int64_t> bin_of(n);
    std::vector<int64_t> bin_start(total_bins + 1, 0);
    for (int64_t a = 0; a < n; ++a) {
        int64_t b[3];
        for (int k = 0; k < 3; ++k) {
            const double span = upper[k] - lower[k];
            const double t = span > 0.0 ? (fractional[3 * a + k] - lower[k]) / span : 0.0;
            b[k] = std::min<int64_t>(n_bins[k] - 1, std::max<int64_t>(0, static_cast<int64_t>(t * n_bins[k])));
        }
        bin_of[a] = (b[0] * n_bins[1] + b[1]) * n_bins[2] + b[2];
        ++bin_start[bin_of[a] + 1];
    }
    for (int64_t b = 0; b < total_bins; ++b) bin_start[b + 1] += bin_start[b];
    BinnedAtoms binned;
    binned.x.resize(n);
    binned.y.resize(n);
    binned.z.resize(n);
    binned.index.resize(n);
    binned.image.resize(3 * n);
    {
        std::vector<int64_t> fill(bin_start.begin(), bin_start.end() - 1);
        const Mat3& B = basis.basis;
        for (int64_t a = 0; a < n; ++a) {
            const int64_t slot = fill[bin_of[a]]++;
            const double* r = positions + 3 * atoms[a];
            const double i0 = static_cast<double>(image[3 * a]);
            const double i1 = static_cast<double>(image[3 * a + 1]);
            const double i2 = static_cast<double>(image[3 * a + 2]);
            binned.x[slot] = r[0] - i0 * B[0][0] - i1 * B[1][0] - i2 * B[2][0];
            binned.y[slot] = r[1] - i0 * B[0][1] - i1 * B[1][1] - i2 * B[2][1];
            binned.z[slot] = r[2] - i0 * B[0][2] - i1 * B[1][2] - i2 * B[2][2];
            binned.index[slot] = atoms[a];
            for (int k = 0; k < 3; ++k) binned.image[3 * slot + k] = image[3 * a + k];
        }
    }

    // half stencil: offsets lexicographically greater than zero
    std::vector<std::array<int64_t, 3>> stencil;
    for (int64_t dx = -reach[0]; dx <= reach[0]; ++dx) {
        for (int64_t dy = -reach[1]; dy <= reach[1]; ++dy) {
            for (int64_t dz = -reach[2]; dz <= reach[2]; ++dz) {
                if (dx > 0 || (dx == 0 && (dy > 0 || (dy == 0 && dz > 0)))) stencil.push_back({dx, dy, dz});
            }
        }
    }

    const double cutoff2 = cutoff * cutoff;
    const Mat3& B = basis.basis;
    const int64_t* img = binned.image.data();
    const double* xs = binned.x.data();
    const double* ys = binned.y.data();
    const double* zs = binned.z.data();
    const int64_t* idx = binned.index.data();
    std::vector<double> d2(64);

    auto check_budget = [&]() {
        TORCH_CHECK_VALUE(edges.size() <= kMaxPairs, "neighbor_list: more than 2^31 - 1 pairs within the cutoff of ",
                          cutoff, " A; use a smaller cutoff or fewer atoms per call");
    };

    for (int64_t bx = 0; bx < n_bins[0]; ++bx) {
        for (int64_t by = 0; by < n_bins[1]; ++by) {
            for (int64_t bz = 0; bz < n_bins[2]; ++bz) {
                const int64_t base = (bx * n_bins[1] + by) * n_bins[2] + bz;
                const int64_t i_begin = bin_start[base];
                const int64_t i_end = bin_start[base + 1];
                if (i_begin == i_end) continue;

                // pairs inside the base bin, no shift
                for (int64_t i = i_begin; i < i_end; ++i) {
                    for (int64_t j = i + 1; j < i_end; ++j) {
                        const double dx = xs[j] - xs[i], dy = ys[j] - ys[i], dz = zs[j] - zs[i];
                        if (dx * dx + dy * dy + dz * dz < cutoff2) {
                            edges.add_pair(idx[i], idx[j], img[3 * i] - img[3 * j], img[3 * i + 1] - img[3 * j + 1],
                                           img[3 * i + 2] - img[3 * j + 2]);
                        }
                    }
                }

                const int64_t base_bin[3] = {bx, by, bz};
                for (const auto& offset : stencil) {
                    int64_t target_bin[3];
                    int64_t shift[3];
                    bool inside = true;
                    for (int k = 0; k < 3; ++k) {
                        const int64_t u = base_bin[k] + offset[k];
                        if (pbc[k]) {
                            shift[k] = floor_div(u, n_bins[k]);
                            target_bin[k] = u - shift[k] * n_bins[k];
                        } else {
                            if (u < 0 || u >= n_bins[k]) inside = false;
                            shift[k] = 0;
                            target_bin[k] = u;
                        }
                    }
                    if (!inside) continue;
                    const int64_t target = (target_bin[0] * n_bins[1] + target_bin[1]) * n_bins[2] + target_bin[2];
                    const int64_t j_begin = bin_start[target];
                    const int64_t j_end = bin_start[target + 1];
                    if (j_begin == j_end) continue;
                    const double s0 = static_cast<double>(shift[0]);
                    const double s1 = static_cast<double>(shift[1]);
                    const double s2 = static_cast<double>(shift[2]);
                    const double tx = s0 * B[0][0] + s1 * B[1][0] + s2 * B[2][0];
                    const double ty = s0 * B[0][1] + s1 * B[1][1] + s2 * B[2][1];
                    const double tz = s0 * B[0][2] + s1 * B[1][2] + s2 * B[2][2];
                    const int64_t n_target = j_end - j_begin;
                    if (static_cast<int64_t>(d2.size()) < n_target) d2.resize(n_target);
                    for (int64_t i = i_begin; i < i_end; ++i) {
                        const double xi = xs[i] - tx, yi = ys[i] - ty, zi = zs[i] - tz;
                        // distances first (vectorises), then the rare branch
                        for (int64_t j = 0; j < n_target; ++j) {
                            const double dx = xs[j_begin + j] - xi;
                            const double dy = ys[j_begin + j] - yi;
                            const double dz = zs[j_begin + j] - zi;
                            d2[j] = dx * dx + dy * dy + dz * dz;
                        }
                        for (int64_t j = 0; j < n_target; ++j) {
                            if (d2[j] < cutoff2) {
                                const int64_t jj = j_begin + j;
                                edges.add_pair(idx[i], idx[jj], shift[0] + img[3 * i] - img[3 * jj],
                                               shift[1] + img[3 * i + 1] - img[3 * jj + 1],
                                               shift[2] + img[3 * i + 2] - img[3 * jj + 2]);
                            }
                        }
                    }
                }
                check_budget();
            }
        }
    }
}

}  // namespace

namespace {

std::tuple<at::Tensor, at::Tensor> search(const at::Tensor& positions, const at::Tensor& cell, const at::Tensor& pbc,
                                          const at::Tensor& batch, double cutoff, bool full_list) {
    check_inputs(positions, cell, pbc, batch, cutoff);
    TORCH_CHECK_VALUE(positions.device().is_cpu(), "neighbor_list_cpu: tensors must be on the CPU");
    const at::Tensor positions64 = positions.to(at::kDouble).contiguous();
    const at::Tensor cell64 = cell.to(at::kDouble).contiguous();
    const at::Tensor pbc_cpu = pbc.contiguous();
    const at::Tensor batch_cpu = batch.contiguous();
    const int64_t n_atoms = positions.size(0);
    const int64_t n_graphs = cell.size(0);

    // atoms of each system, in input order (batch need not be sorted)
    std::vector<std::vector<int64_t>> atoms_of(n_graphs);
    const int64_t* batch_data = batch_cpu.data_ptr<int64_t>();
    for (int64_t a = 0; a < n_atoms; ++a) atoms_of[batch_data[a]].push_back(a);

    const double* pos = positions64.data_ptr<double>();
    const double* cell_data = cell64.data_ptr<double>();
    const bool* pbc_data = pbc_cpu.data_ptr<bool>();
    EdgeBuffer edges;
    edges.full_list = full_list;
    edges.reserve((full_list ? 64 : 32) * n_atoms);
    for (int64_t g = 0; g < n_graphs; ++g) {
        Mat3 h;
        std::array<bool, 3> periodic;
        for (int r = 0; r < 3; ++r) {
            for (int c = 0; c < 3; ++c) h[r][c] = cell_data[9 * g + 3 * r + c];
            periodic[r] = pbc_data[3 * g + r];
        }
        search_one_system(pos, atoms_of[g], h, periodic, cutoff, g, edges);
    }

    const int64_t n_edges = edges.size();
    auto long_options = at::TensorOptions().dtype(at::kLong);
    at::Tensor edge_index = at::empty({2, n_edges}, long_options);
    at::Tensor cell_shifts = at::empty({n_edges, 3}, long_options);
    if (n_edges > 0) {
        std::memcpy(edge_index.data_ptr<int64_t>(), edges.sender.data(), n_edges * sizeof(int64_t));
        std::memcpy(edge_index.data_ptr<int64_t>() + n_edges, edges.receiver.data(), n_edges * sizeof(int64_t));
        std::memcpy(cell_shifts.data_ptr<int64_t>(), edges.shift.data(), 3 * n_edges * sizeof(int64_t));
    }
    return {edge_index, cell_shifts};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> neighbor_list_cpu(const at::Tensor& positions, const at::Tensor& cell,
                                                     const at::Tensor& pbc, const at::Tensor& batch, double cutoff) {
    return search(positions, cell, pbc, batch, cutoff, true);
}

std::tuple<at::Tensor, at::Tensor> neighbor_pairs_cpu(const at::Tensor& positions, const at::Tensor& cell,
                                                      const at::Tensor& pbc, const at::Tensor& batch, double cutoff) {
    return search(positions, cell, pbc, batch, cutoff, false);
}

}  // namespace neighbors
}  // namespace mlff
