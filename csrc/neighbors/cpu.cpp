// O(N) cell-list neighbour search on the CPU.
//
// Per system: atoms are wrapped into the cell along periodic axes, sorted into bins of about
// cutoff / kBinsPerCutoff, and every bin is compared with the bins of a half stencil (each
// unordered pair of bins once, images included); every pair found is emitted in both
// directions. Distances are computed in double whatever the input dtype.
#include "neighbors.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <vector>

#include "checks.h"
#include "geometry.h"

namespace mlff {
namespace neighbors {
namespace {

// Bins are about cutoff / 2 wide; the stencil then reaches 2 bins each way. Compared with
// cutoff-wide bins this checks 15.6 instead of 27 cutoff^3 of candidates per atom.
constexpr double kBinsPerCutoff = 2.0;

// Large buffers are 2 MiB aligned and advised to use transparent huge pages: a 100k-atom list
// is hundreds of MB, and touching fresh 4 KiB pages (page faults) would otherwise cost more
// than the search itself. Freed with std::free (also the deleter of the output tensors).
void* allocate(int64_t bytes) {
    constexpr int64_t kHugePage = int64_t(1) << 21;
    if (bytes < kHugePage) return std::malloc(std::max<int64_t>(bytes, 8));
    const int64_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* data = std::aligned_alloc(kHugePage, rounded);
    if (data != nullptr) madvise(data, rounded, MADV_HUGEPAGE);
    return data;
}

// Growing edge storage, handed over to the output tensors without a copy for one system.
// `pairs` holds senders in [0, capacity) and receivers in [capacity, 2 capacity). Space is
// reserved per block of hits (`ensure`), then written through raw pointers.
struct EdgeBuffer {
    bool full_list = true;  // emit (j, i, -S) after every (i, j, S)
    int64_t* pairs = nullptr;
    int64_t* shift = nullptr;  // 3 per edge
    int64_t capacity = 0;
    int64_t count = 0;

    EdgeBuffer() = default;
    EdgeBuffer(const EdgeBuffer&) = delete;
    EdgeBuffer& operator=(const EdgeBuffer&) = delete;
    EdgeBuffer(EdgeBuffer&& other) noexcept { *this = std::move(other); }
    EdgeBuffer& operator=(EdgeBuffer&& other) noexcept {
        std::swap(full_list, other.full_list);
        std::swap(pairs, other.pairs);
        std::swap(shift, other.shift);
        std::swap(capacity, other.capacity);
        std::swap(count, other.count);
        return *this;
    }
    ~EdgeBuffer() {
        std::free(pairs);
        std::free(shift);
    }

    int64_t size() const { return count; }
    const int64_t* senders() const { return pairs; }
    const int64_t* receivers() const { return pairs + capacity; }

    void ensure(int64_t extra_pairs) {
        const int64_t needed = count + (full_list ? 2 : 1) * extra_pairs;
        if (needed <= capacity) return;
        const int64_t grown = std::max<int64_t>(needed, 2 * capacity);
        auto* new_pairs = static_cast<int64_t*>(allocate(2 * grown * int64_t(sizeof(int64_t))));
        auto* new_shift = static_cast<int64_t*>(allocate(3 * grown * int64_t(sizeof(int64_t))));
        TORCH_CHECK(new_pairs != nullptr && new_shift != nullptr, "neighbor_list: out of memory for ", grown, " pairs");
        if (count > 0) {
            std::memcpy(new_pairs, pairs, count * sizeof(int64_t));
            std::memcpy(new_pairs + grown, pairs + capacity, count * sizeof(int64_t));
            std::memcpy(new_shift, shift, 3 * count * sizeof(int64_t));
        }
        std::free(pairs);
        std::free(shift);
        pairs = new_pairs;
        shift = new_shift;
        capacity = grown;
    }
    inline void add_pair(int64_t i, int64_t j, int64_t s0, int64_t s1, int64_t s2) {
        int64_t* sender = pairs;
        int64_t* receiver = pairs + capacity;
        int64_t* sh = shift + 3 * count;
        sender[count] = i;
        receiver[count] = j;
        sh[0] = s0;
        sh[1] = s1;
        sh[2] = s2;
        ++count;
        if (!full_list) return;
        sender[count] = j;
        receiver[count] = i;
        sh[3] = -s0;
        sh[4] = -s1;
        sh[5] = -s2;
        ++count;
    }

    // (edge_index (2, count), cell_shifts (count, 3)) owning this buffer's memory
    std::tuple<at::Tensor, at::Tensor> release() {
        if (pairs == nullptr) ensure(1);  // allocated even when empty
        std::memmove(pairs + count, pairs + capacity, count * sizeof(int64_t));  // receivers after senders
        auto options = at::TensorOptions().dtype(at::kLong);
        at::Tensor edge_index = at::from_blob(pairs, {2, count}, [](void* data) { std::free(data); }, options);
        at::Tensor cell_shifts = at::from_blob(shift, {count, 3}, [](void* data) { std::free(data); }, options);
        pairs = nullptr;
        shift = nullptr;
        capacity = 0;
        count = 0;
        return {edge_index, cell_shifts};
    }
};

// Indices in [begin, end) of the atoms closer than sqrt(cutoff2) to (xi, yi, zi), written to
// `hits` without branches (the comparison is unpredictable); returns how many.
inline int64_t collect_within(const double* xs, const double* ys, const double* zs, int64_t begin, int64_t end,
                              double xi, double yi, double zi, double cutoff2, int64_t* hits) {
    int64_t n_hits = 0;
    for (int64_t j = begin; j < end; ++j) {
        const double dx = xs[j] - xi;
        const double dy = ys[j] - yi;
        const double dz = zs[j] - zi;
        hits[n_hits] = j;
        n_hits += (dx * dx + dy * dy + dz * dz < cutoff2) ? 1 : 0;
    }
    return n_hits;
}

// Atoms of one system sorted by bin, structure of arrays.
struct BinnedAtoms {
    std::vector<double> x, y, z;       // wrapped Cartesian positions, Angstrom
    std::vector<int64_t> index;        // global atom index
    std::vector<int64_t> image;        // 3 per atom: lattice vector subtracted when wrapping
    std::vector<int64_t> bin_start;    // n_bins + 1 offsets into the arrays above
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

    double length[3];
    for (int k = 0; k < 3; ++k) length[k] = (upper[k] - lower[k]) * basis.heights[k];
    const double pair_estimate = estimated_pairs(n, length, pbc.data(), cutoff);
    TORCH_CHECK_VALUE(pair_estimate < static_cast<double>(kMaxPairs),
                      "neighbor_list: system ", graph, " would have about ", static_cast<int64_t>(pair_estimate),
                      " pairs within the cutoff of ", cutoff, " A, more than the 2^31 - 1 supported; use a smaller "
                      "cutoff or check the cell (is it in Angstrom?)");
    // reserve for the expected pairs (bounded: the estimate is loose for sparse open systems)
    edges.ensure(static_cast<int64_t>(std::min(0.55 * pair_estimate, 100.0 * static_cast<double>(n))));
    const BinGrid grid = make_bin_grid(length, pbc.data(), n, cutoff, kBinsPerCutoff);
    const int64_t* n_bins = grid.n_bins;
    const int64_t* reach = grid.reach;

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

    // Half stencil as rows along z: (dx, dy) lexicographically positive with the whole z
    // reach, plus the (0, 0) row above the base bin. Consecutive z bins are contiguous in the
    // sorted arrays, so each row is one or a few contiguous runs (split where z wraps).
    std::vector<std::array<int64_t, 2>> rows;
    for (int64_t dx = 0; dx <= reach[0]; ++dx) {
        for (int64_t dy = (dx == 0 ? 0 : -reach[1]); dy <= reach[1]; ++dy) rows.push_back({dx, dy});
    }

    const double cutoff2 = cutoff * cutoff;
    const Mat3& B = basis.basis;
    const int64_t* img = binned.image.data();
    const double* xs = binned.x.data();
    const double* ys = binned.y.data();
    const double* zs = binned.z.data();
    const int64_t* idx = binned.index.data();
    std::vector<int64_t> hits(n + 1);

    // pairs of atom i (base bin) with atoms [j_begin, j_end) displaced by shift (s0, s1, s2)
    auto pair_with_run = [&](int64_t i, int64_t j_begin, int64_t j_end, const int64_t shift[3], double tx, double ty,
                             double tz) {
        const int64_t n_hits =
            collect_within(xs, ys, zs, j_begin, j_end, xs[i] - tx, ys[i] - ty, zs[i] - tz, cutoff2, hits.data());
        if (n_hits == 0) return;
        edges.ensure(n_hits);
        const int64_t si0 = shift[0] + img[3 * i], si1 = shift[1] + img[3 * i + 1], si2 = shift[2] + img[3 * i + 2];
        for (int64_t h = 0; h < n_hits; ++h) {
            const int64_t j = hits[h];
            edges.add_pair(idx[i], idx[j], si0 - img[3 * j], si1 - img[3 * j + 1], si2 - img[3 * j + 2]);
        }
    };

    for (int64_t bx = 0; bx < n_bins[0]; ++bx) {
        for (int64_t by = 0; by < n_bins[1]; ++by) {
            for (int64_t bz = 0; bz < n_bins[2]; ++bz) {
                const int64_t base = (bx * n_bins[1] + by) * n_bins[2] + bz;
                const int64_t i_begin = bin_start[base];
                const int64_t i_end = bin_start[base + 1];
                if (i_begin == i_end) continue;

                // pairs inside the base bin, no shift
                const int64_t no_shift[3] = {0, 0, 0};
                for (int64_t i = i_begin; i < i_end; ++i) pair_with_run(i, i + 1, i_end, no_shift, 0.0, 0.0, 0.0);

                for (const auto& row : rows) {
                    int64_t shift[3];
                    int64_t row_bin[2];
                    bool inside = true;
                    for (int k = 0; k < 2; ++k) {
                        const int64_t u = (k == 0 ? bx : by) + row[k];
                        if (pbc[k]) {
                            shift[k] = floor_div(u, n_bins[k]);
                            row_bin[k] = u - shift[k] * n_bins[k];
                        } else {
                            inside = inside && u >= 0 && u < n_bins[k];
                            shift[k] = 0;
                            row_bin[k] = u;
                        }
                    }
                    if (!inside) continue;
                    const int64_t row_base = (row_bin[0] * n_bins[1] + row_bin[1]) * n_bins[2];
                    // unwrapped z range of this row
                    int64_t z_first = (row[0] == 0 && row[1] == 0) ? bz + 1 : bz - reach[2];
                    int64_t z_last = bz + reach[2];
                    if (!pbc[2]) {
                        z_first = std::max<int64_t>(z_first, 0);
                        z_last = std::min<int64_t>(z_last, n_bins[2] - 1);
                    }
                    // runs of constant z shift
                    for (int64_t u = z_first; u <= z_last;) {
                        const int64_t sz = pbc[2] ? floor_div(u, n_bins[2]) : 0;
                        const int64_t run_last = std::min(z_last, (sz + 1) * n_bins[2] - 1);
                        const int64_t w_first = u - sz * n_bins[2];
                        const int64_t w_last = run_last - sz * n_bins[2];
                        u = run_last + 1;
                        const int64_t j_begin = bin_start[row_base + w_first];
                        const int64_t j_end = bin_start[row_base + w_last + 1];
                        if (j_begin == j_end) continue;
                        shift[2] = sz;
                        const double s0 = static_cast<double>(shift[0]);
                        const double s1 = static_cast<double>(shift[1]);
                        const double s2 = static_cast<double>(sz);
                        const double tx = s0 * B[0][0] + s1 * B[1][0] + s2 * B[2][0];
                        const double ty = s0 * B[0][1] + s1 * B[1][1] + s2 * B[2][1];
                        const double tz = s0 * B[0][2] + s1 * B[1][2] + s2 * B[2][2];
                        for (int64_t i = i_begin; i < i_end; ++i) pair_with_run(i, j_begin, j_end, shift, tx, ty, tz);
                    }
                }
                TORCH_CHECK_VALUE(edges.size() <= kMaxPairs, "neighbor_list: more than 2^31 - 1 pairs within the cutoff of ",
                                  cutoff, " A; use a smaller cutoff or fewer atoms per call");
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
    // one edge buffer per system, searched in parallel (training batches), concatenated in
    // system order so the result does not depend on the number of threads
    std::vector<EdgeBuffer> edges_of(n_graphs);
    at::parallel_for(0, n_graphs, 1, [&](int64_t first, int64_t last) {
        for (int64_t g = first; g < last; ++g) {
            Mat3 h;
            std::array<bool, 3> periodic;
            for (int r = 0; r < 3; ++r) {
                for (int c = 0; c < 3; ++c) h[r][c] = cell_data[9 * g + 3 * r + c];
                periodic[r] = pbc_data[3 * g + r];
            }
            edges_of[g].full_list = full_list;
            search_one_system(pos, atoms_of[g], h, periodic, cutoff, g, edges_of[g]);
        }
    });

    int64_t n_edges = 0;
    for (const auto& edges : edges_of) n_edges += edges.size();
    TORCH_CHECK_VALUE(n_edges <= kMaxPairs, "neighbor_list: ", n_edges, " pairs within the cutoff of ", cutoff,
                      " A, more than the 2^31 - 1 supported; split the batch or use a smaller cutoff");
    if (n_graphs == 1) return edges_of[0].release();

    EdgeBuffer all;
    all.full_list = false;  // capacity for exactly n_edges edges
    all.ensure(n_edges);
    int64_t* sender = all.pairs;
    int64_t* receiver = all.pairs + all.capacity;
    int64_t* shifts = all.shift;
    int64_t offset = 0;
    for (const auto& edges : edges_of) {
        const int64_t n = edges.size();
        if (n == 0) continue;
        std::memcpy(sender + offset, edges.senders(), n * sizeof(int64_t));
        std::memcpy(receiver + offset, edges.receivers(), n * sizeof(int64_t));
        std::memcpy(shifts + 3 * offset, edges.shift, 3 * n * sizeof(int64_t));
        offset += n;
    }
    all.count = n_edges;
    auto [edge_index, cell_shifts] = all.release();
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
