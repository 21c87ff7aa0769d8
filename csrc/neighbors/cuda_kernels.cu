// Device code of the CUDA neighbour list (host side: cuda.cpp).
//
// This file is compiled at build time by NVRTC (cmake/cuda_toolkit.py), once per target
// architecture, and embedded in mlff/_C.so; cuda.cpp loads the image that fits the GPU with
// cudaLibraryLoadData and launches the kernels by name with cudaLaunchKernel. Hence:
//   - kernels are extern "C" (unmangled names) and take only 8-byte arguments (pointers,
//     long long, double), in the order that cuda.cpp passes them;
//   - no standard headers (NVRTC builds without them); long long is int64_t of the host.
//
// Algorithm: a cell list, searched one warp per atom.
//   1. mlff_wrap_positions: thread per atom. Atoms are taken in the order sorted by system
//      (`order` maps sorted -> input index), wrapped into the cell along periodic axes exactly
//      as the CPU kernel does: fractional s = r @ inverse, image = floor(s), x = r - image @ basis.
//   2. mlff_bin_atoms: thread per atom: its bin along each axis, t = (s - lower) / span scaled
//      to the system's bin count (the bin parameters come from the host's make_bin_grid, as on
//      the CPU but with bins about one cutoff wide: at most max(8, 2 n) per system, `reach`
//      bins searched each way). The host then sorts atoms by bin (stable) and finds where each
//      bin starts.
//   3. mlff_count_pairs / mlff_fill_pairs: one warp per atom i. For every bin offset d within
//      the reach, the neighbouring bin b_i + d is taken modulo the bin count along periodic
//      axes, the quotient being the lattice image S (along open axes bins outside the grid are
//      skipped); the 32 lanes stride over the atoms j of that bin. A pair is kept when
//      |x_j - x_i + S @ basis|^2 < cutoff^2 in double, except (i, i, S = 0). Its shift is
//      S + image_i - image_j, so that r_ij = r_j - r_i + shift @ cell. Each (j, S) is visited
//      at most once (d -> (bin, S) is one-to-one), and every pair within the cutoff is visited:
//      a bin is at least cutoff / reach wide along each axis (heights of the basis), as on the
//      CPU. The count pass writes the number of pairs of each atom; after an exclusive sum on the
//      host side, the fill pass writes each atom's pairs from its offset, ordered within the warp
//      with a ballot. Both passes evaluate the same inline function with explicitly rounded
//      arithmetic (__dadd_rn & co., no contraction into FMA), so they agree bit for bit, and the
//      distance test is the CPU's, so the pair set equals the CPU's.
#include "cuda_layout.h"

namespace {

using namespace mlff::neighbors::cuda_layout;

typedef long long i64;

__device__ __forceinline__ double fractional_of(const double* r, const double* inverse, int k) {
    // same order of operations as the CPU kernel: r0 * inv[0][k] + r1 * inv[1][k] + r2 * inv[2][k]
    return __dadd_rn(__dadd_rn(__dmul_rn(r[0], inverse[k]), __dmul_rn(r[1], inverse[3 + k])),
                     __dmul_rn(r[2], inverse[6 + k]));
}

// Translation S @ basis along Cartesian component c.
__device__ __forceinline__ double translation(double s0, double s1, double s2, const double* basis, int c) {
    return __dadd_rn(__dadd_rn(__dmul_rn(s0, basis[c]), __dmul_rn(s1, basis[3 + c])), __dmul_rn(s2, basis[6 + c]));
}

__device__ __forceinline__ double squared_norm(double dx, double dy, double dz) {
    return __dadd_rn(__dadd_rn(__dmul_rn(dx, dx), __dmul_rn(dy, dy)), __dmul_rn(dz, dz));
}

// Floor of a / b for b > 0 (geometry.h's floor_div, for device code: NVRTC has no standard headers).
__device__ __forceinline__ i64 floor_div(i64 a, i64 b) {
    const i64 q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

// The pair search of one atom per warp; kFill selects the pass (see the header comment).
// Every lane of a warp takes the same trip through every loop: the loop bounds depend only on
// the warp's atom and the bins, so __ballot_sync always sees the full warp.
//   bin_xyz (n_atoms, 3): bin of each atom along each axis; bin_start (total bins + 1): where
//   each bin's atoms start in bin_atoms, the atoms (sorted-by-system index) ordered by bin.
template <bool kFill>
__device__ __forceinline__ void visit_pairs(const double* __restrict__ wrapped, const i64* __restrict__ system_of,
                                            const double* __restrict__ geometry, const double* __restrict__ bins,
                                            const i64* __restrict__ bin_xyz, const i64* __restrict__ bin_start,
                                            const i64* __restrict__ bin_atoms, i64 n_atoms, double cutoff2,
                                            i64* __restrict__ counts_out, const i64* __restrict__ counts_in,
                                            const i64* __restrict__ image,
                                            const i64* __restrict__ order, const i64* __restrict__ pair_offsets,
                                            i64 n_pairs, i64* __restrict__ edge_index, i64* __restrict__ shifts) {
    const i64 a = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
    const unsigned lane = threadIdx.x % kWarpSize;
    if (a >= n_atoms) return;  // the whole warp leaves: blockDim.x is a multiple of 32

    const i64 system = system_of[a];
    const double* geo = geometry + system * kGeometryStride;
    const double* basis = geo + kBasis;
    const double* record = bins + system * kBinStride;
    i64 n_bins[3], reach[3], home[3];
    bool periodic[3];
    for (int k = 0; k < 3; ++k) {
        n_bins[k] = static_cast<i64>(record[kBinCount + k]);
        reach[k] = static_cast<i64>(record[kBinReach + k]);
        home[k] = bin_xyz[3 * a + k];
        periodic[k] = geo[kPeriodic + k] != 0.0;
    }
    const i64 first_bin = static_cast<i64>(record[kBinOffset]);
    const double xi = wrapped[a];
    const double yi = wrapped[n_atoms + a];
    const double zi = wrapped[2 * n_atoms + a];

    i64 count = 0;
    i64 cursor = 0;        // fill: next free slot of this atom's pairs
    i64 stop = 0;          // fill: end of this atom's slots (a guard; the passes agree exactly)
    i64 sender = 0;
    i64 image_a[3] = {0, 0, 0};
    if constexpr (kFill) {
        cursor = pair_offsets[a];
        stop = cursor + counts_in[a];
        sender = order[a];
        for (int k = 0; k < 3; ++k) image_a[k] = image[3 * a + k];
    }

    for (i64 d0 = -reach[0]; d0 <= reach[0]; ++d0) {
        for (i64 d1 = -reach[1]; d1 <= reach[1]; ++d1) {
            for (i64 d2 = -reach[2]; d2 <= reach[2]; ++d2) {
                const i64 offset[3] = {d0, d1, d2};
                i64 s[3], w[3];
                bool inside = true;
                for (int k = 0; k < 3; ++k) {
                    const i64 u = home[k] + offset[k];
                    if (periodic[k]) {
                        s[k] = floor_div(u, n_bins[k]);
                        w[k] = u - s[k] * n_bins[k];
                    } else {
                        s[k] = 0;
                        w[k] = u;
                        inside = inside && u >= 0 && u < n_bins[k];
                    }
                }
                if (!inside) continue;  // uniform across the warp
                const i64 bin = first_bin + (w[0] * n_bins[1] + w[1]) * n_bins[2] + w[2];
                const i64 begin = bin_start[bin];
                const i64 end = bin_start[bin + 1];
                const double f0 = static_cast<double>(s[0]);
                const double f1 = static_cast<double>(s[1]);
                const double f2 = static_cast<double>(s[2]);
                const double tx = translation(f0, f1, f2, basis, 0);
                const double ty = translation(f0, f1, f2, basis, 1);
                const double tz = translation(f0, f1, f2, basis, 2);
                const bool zero_shift = s[0] == 0 && s[1] == 0 && s[2] == 0;
                for (i64 chunk = begin; chunk < end; chunk += kWarpSize) {
                    const i64 slot_j = chunk + lane;
                    const bool valid = slot_j < end;
                    const i64 j = valid ? bin_atoms[slot_j] : 0;
                    bool hit = false;
                    if (valid) {
                        // same order of operations as the CPU kernel: (x_j - x_i) + S @ basis
                        const double dx = __dadd_rn(__dsub_rn(wrapped[j], xi), tx);
                        const double dy = __dadd_rn(__dsub_rn(wrapped[n_atoms + j], yi), ty);
                        const double dz = __dadd_rn(__dsub_rn(wrapped[2 * n_atoms + j], zi), tz);
                        const bool self = j == a && zero_shift;
                        hit = !self && squared_norm(dx, dy, dz) < cutoff2;
                    }
                    if constexpr (kFill) {
                        const unsigned hits = __ballot_sync(0xffffffffu, hit);
                        if (hit) {
                            const i64 slot = cursor + __popc(hits & ((1u << lane) - 1u));
                            if (slot < stop) {
                                edge_index[slot] = sender;
                                edge_index[n_pairs + slot] = order[j];
                                shifts[3 * slot + 0] = s[0] + image_a[0] - image[3 * j + 0];
                                shifts[3 * slot + 1] = s[1] + image_a[1] - image[3 * j + 1];
                                shifts[3 * slot + 2] = s[2] + image_a[2] - image[3 * j + 2];
                            }
                        }
                        cursor += __popc(hits);
                    } else {
                        count += hit ? 1 : 0;
                    }
                }
            }
        }
    }

    if constexpr (!kFill) {
        for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
            count += __shfl_down_sync(0xffffffffu, count, offset);
        }
        if (lane == 0) counts_out[a] = count;
    }
}

}  // namespace

// Thread per atom, in sorted order a: wrap into the cell along periodic axes.
//   positions (n_atoms, 3) input order; order, system_of (n_atoms,) sorted order;
//   wrapped, fractional (3, n_atoms) and image (n_atoms, 3) sorted order.
extern "C" __global__ void mlff_wrap_positions(const double* __restrict__ positions, const i64* __restrict__ order,
                                               const i64* __restrict__ system_of,
                                               const double* __restrict__ geometry, i64 n_atoms,
                                               double* __restrict__ wrapped, double* __restrict__ fractional,
                                               i64* __restrict__ image) {
    const i64 a = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (a >= n_atoms) return;
    const double* geo = geometry + system_of[a] * kGeometryStride;
    const double* basis = geo + kBasis;
    const double* r = positions + 3 * order[a];
    double whole[3];
    for (int k = 0; k < 3; ++k) {
        double s = fractional_of(r, geo + kInverse, k);
        whole[k] = 0.0;
        if (geo[kPeriodic + k] != 0.0) {
            whole[k] = floor(s);
            s = __dsub_rn(s, whole[k]);
        }
        fractional[k * n_atoms + a] = s;
        image[3 * a + k] = static_cast<i64>(whole[k]);
    }
    for (int c = 0; c < 3; ++c) {
        // same order of operations as the CPU kernel: r - i0 * B[0] - i1 * B[1] - i2 * B[2]
        const double x = __dsub_rn(__dsub_rn(__dsub_rn(r[c], __dmul_rn(whole[0], basis[c])),
                                             __dmul_rn(whole[1], basis[3 + c])),
                                   __dmul_rn(whole[2], basis[6 + c]));
        wrapped[c * n_atoms + a] = x;
    }
}

// Thread per atom, sorted order a: its bin along each axis (bin_xyz, (n_atoms, 3)) and its bin
// index among all systems' bins (bin_of, (n_atoms,)).
extern "C" __global__ void mlff_bin_atoms(const double* __restrict__ fractional, const i64* __restrict__ system_of,
                                          const double* __restrict__ bins, i64 n_atoms, i64* __restrict__ bin_of,
                                          i64* __restrict__ bin_xyz) {
    const i64 a = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (a >= n_atoms) return;
    const double* record = bins + system_of[a] * kBinStride;
    i64 b[3];
    for (int k = 0; k < 3; ++k) {
        const double span = record[kBinSpan + k];
        const double count = record[kBinCount + k];
        // as cpu.cpp: t = (s - lower) / span in [0, 1], bin = clamp(floor(t * n_bins))
        const double t = span > 0.0 ? __ddiv_rn(__dsub_rn(fractional[k * n_atoms + a], record[kBinLower + k]), span) : 0.0;
        i64 value = static_cast<i64>(__dmul_rn(t, count));
        const i64 last = static_cast<i64>(count) - 1;
        value = value < 0 ? 0 : (value > last ? last : value);
        b[k] = value;
        bin_xyz[3 * a + k] = value;
    }
    bin_of[a] = static_cast<i64>(record[kBinOffset]) +
                (b[0] * static_cast<i64>(record[kBinCount + 1]) + b[1]) * static_cast<i64>(record[kBinCount + 2]) + b[2];
}

// Warp per atom: counts[a] = number of pairs with sender a (sorted order).
extern "C" __global__ void mlff_count_pairs(const double* __restrict__ wrapped, const i64* __restrict__ system_of,
                                            const double* __restrict__ geometry, const double* __restrict__ bins,
                                            const i64* __restrict__ bin_xyz, const i64* __restrict__ bin_start,
                                            const i64* __restrict__ bin_atoms, i64 n_atoms, double cutoff2,
                                            i64* __restrict__ counts) {
    visit_pairs<false>(wrapped, system_of, geometry, bins, bin_xyz, bin_start, bin_atoms, n_atoms, cutoff2, counts,
                       nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr);
}

// Warp per atom: write the pairs of atom a into [pair_offsets[a], pair_offsets[a] + counts[a]).
//   edge_index (2, n_pairs), shifts (n_pairs, 3), with input-order atom indices.
extern "C" __global__ void mlff_fill_pairs(const double* __restrict__ wrapped, const i64* __restrict__ system_of,
                                           const double* __restrict__ geometry, const double* __restrict__ bins,
                                           const i64* __restrict__ bin_xyz, const i64* __restrict__ bin_start,
                                           const i64* __restrict__ bin_atoms, i64 n_atoms, double cutoff2,
                                           const i64* __restrict__ counts, const i64* __restrict__ image,
                                           const i64* __restrict__ order, const i64* __restrict__ pair_offsets,
                                           i64 n_pairs, i64* __restrict__ edge_index, i64* __restrict__ shifts) {
    visit_pairs<true>(wrapped, system_of, geometry, bins, bin_xyz, bin_start, bin_atoms, n_atoms, cutoff2, nullptr,
                      counts, image, order, pair_offsets, n_pairs, edge_index, shifts);
}
