// Device code of the CUDA neighbour list (host side: cuda.cpp).
//
// This file is compiled at build time by NVRTC (cmake/cuda_toolkit.py), once per target
// architecture, and embedded in mlff/_C.so; cuda.cpp loads the image that fits the GPU with
// cudaLibraryLoadData and launches the kernels by name with cudaLaunchKernel. Hence:
//   - kernels are extern "C" (unmangled names) and take only 8-byte arguments (pointers,
//     long long, double), in the order that cuda.cpp passes them;
//   - no standard headers (NVRTC builds without them); long long is int64_t of the host.
//
// Algorithm (O(N^2) per system; a cell list on the GPU is future work):
//   1. mlff_wrap_positions: thread per atom. Atoms are taken in the order sorted by system
//      (`order` maps sorted -> input index), wrapped into the cell along periodic axes exactly
//      as the CPU kernel does: fractional s = r @ inverse, image = floor(s), x = r - image @ basis.
//   2. mlff_count_pairs / mlff_fill_pairs: one warp per atom i; the 32 lanes stride over the
//      atoms j of the same system, and for each j over the lattice images S that can hold a
//      neighbour of i. A pair is kept when |x_j - x_i + S @ basis|^2 < cutoff^2 in double, except
//      (i, i, S = 0). Its shift is S + image_i - image_j, so that r_ij = r_j - r_i + shift @ cell.
//      The count pass writes the number of pairs of each atom; after an exclusive sum on the
//      host side, the fill pass writes each atom's pairs from its offset, ordered within the warp
//      with a ballot. Both passes evaluate the same inline function with explicitly rounded
//      arithmetic (__dadd_rn & co., no contraction into FMA), so they agree bit for bit.
//
// Images: along a periodic axis k the distance is at least |s_j - s_i + S_k| * height_k, and the
// wrapped fractional coordinates lie in [0, 1], so only S_k in (s_i - 1 - reach_k, s_i + reach_k)
// can give a pair (reach_k = cutoff / height_k); the range is widened by kImageMargin to absorb
// rounding. The list is exactly symmetric: the computed distance of (j, i, -S) is the negation of
// that of (i, j, S) (round-to-nearest is symmetric), and -S lies in j's image range.
#include "cuda_layout.h"

namespace {

using namespace mlff::neighbors::cuda_layout;

typedef long long i64;

// Fractional widening of the image range, far above rounding errors and far below one image.
constexpr double kImageMargin = 1e-6;

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

// Lattice images S_k of atom a that can hold a neighbour (see the header comment).
__device__ __forceinline__ void image_range(const double* geometry, const double* fractional, i64 n_atoms, i64 a,
                                            i64 lower[3], i64 upper[3]) {
    for (int k = 0; k < 3; ++k) {
        if (geometry[kPeriodic + k] != 0.0) {
            const double s = fractional[k * n_atoms + a];
            const double reach = geometry[kReach + k];
            lower[k] = static_cast<i64>(ceil(__dsub_rn(__dsub_rn(__dsub_rn(s, 1.0), reach), kImageMargin)));
            upper[k] = static_cast<i64>(floor(__dadd_rn(__dadd_rn(s, reach), kImageMargin)));
        } else {
            lower[k] = 0;
            upper[k] = 0;
        }
    }
}

// The pair search of one atom per warp; kFill selects the pass (see the header comment).
// Every lane of a warp takes the same trip through every loop: the loop bounds depend only on
// the warp's atom, so __ballot_sync always sees the full warp.
template <bool kFill>
__device__ __forceinline__ void visit_pairs(const double* __restrict__ wrapped, const double* __restrict__ fractional,
                                            const i64* __restrict__ system_of, const i64* __restrict__ system_offsets,
                                            const double* __restrict__ geometry, i64 n_atoms, double cutoff2,
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
    const i64 begin = system_offsets[system];
    const i64 end = system_offsets[system + 1];
    const double xi = wrapped[a];
    const double yi = wrapped[n_atoms + a];
    const double zi = wrapped[2 * n_atoms + a];
    i64 lower[3], upper[3];
    image_range(geo, fractional, n_atoms, a, lower, upper);

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

    for (i64 chunk = begin; chunk < end; chunk += kWarpSize) {
        const i64 j = chunk + lane;
        const bool valid = j < end;
        double dx0 = 0.0, dy0 = 0.0, dz0 = 0.0;
        if (valid) {
            dx0 = __dsub_rn(wrapped[j], xi);
            dy0 = __dsub_rn(wrapped[n_atoms + j], yi);
            dz0 = __dsub_rn(wrapped[2 * n_atoms + j], zi);
        }
        for (i64 s0 = lower[0]; s0 <= upper[0]; ++s0) {
            for (i64 s1 = lower[1]; s1 <= upper[1]; ++s1) {
                for (i64 s2 = lower[2]; s2 <= upper[2]; ++s2) {
                    const double f0 = static_cast<double>(s0);
                    const double f1 = static_cast<double>(s1);
                    const double f2 = static_cast<double>(s2);
                    const double dx = __dadd_rn(dx0, translation(f0, f1, f2, basis, 0));
                    const double dy = __dadd_rn(dy0, translation(f0, f1, f2, basis, 1));
                    const double dz = __dadd_rn(dz0, translation(f0, f1, f2, basis, 2));
                    const bool self = j == a && s0 == 0 && s1 == 0 && s2 == 0;
                    const bool hit = valid && !self && squared_norm(dx, dy, dz) < cutoff2;
                    if constexpr (kFill) {
                        const unsigned hits = __ballot_sync(0xffffffffu, hit);
                        if (hit) {
                            const i64 slot = cursor + __popc(hits & ((1u << lane) - 1u));
                            if (slot < stop) {
                                edge_index[slot] = sender;
                                edge_index[n_pairs + slot] = order[j];
                                shifts[3 * slot + 0] = s0 + image_a[0] - image[3 * j + 0];
                                shifts[3 * slot + 1] = s1 + image_a[1] - image[3 * j + 1];
                                shifts[3 * slot + 2] = s2 + image_a[2] - image[3 * j + 2];
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

// Warp per atom: counts[a] = number of pairs with sender a (sorted order).
extern "C" __global__ void mlff_count_pairs(const double* __restrict__ wrapped, const double* __restrict__ fractional,
                                            const i64* __restrict__ system_of,
                                            const i64* __restrict__ system_offsets,
                                            const double* __restrict__ geometry, i64 n_atoms, double cutoff2,
                                            i64* __restrict__ counts) {
    visit_pairs<false>(wrapped, fractional, system_of, system_offsets, geometry, n_atoms, cutoff2, counts, nullptr,
                       nullptr, nullptr, nullptr, 0, nullptr, nullptr);
}

// Warp per atom: write the pairs of atom a into [pair_offsets[a], pair_offsets[a] + counts[a]).
//   edge_index (2, n_pairs), shifts (n_pairs, 3), with input-order atom indices.
extern "C" __global__ void mlff_fill_pairs(const double* __restrict__ wrapped, const double* __restrict__ fractional,
                                           const i64* __restrict__ system_of, const i64* __restrict__ system_offsets,
                                           const double* __restrict__ geometry, i64 n_atoms, double cutoff2,
                                           const i64* __restrict__ counts, const i64* __restrict__ image,
                                           const i64* __restrict__ order, const i64* __restrict__ pair_offsets,
                                           i64 n_pairs, i64* __restrict__ edge_index, i64* __restrict__ shifts) {
    visit_pairs<true>(wrapped, fractional, system_of, system_offsets, geometry, n_atoms, cutoff2, nullptr, counts,
                      image, order, pair_offsets, n_pairs, edge_index, shifts);
}
