// Data layout shared by the host side of the CUDA neighbour list (cuda.cpp, compiled by the C++
// compiler) and its kernels (cuda_kernels.cu, compiled by NVRTC at build time). Keep this header
// free of includes: NVRTC compiles it without the standard library.
#pragma once

namespace mlff {
namespace neighbors {
namespace cuda_layout {

// One record of doubles per system (graph), `kGeometryStride` doubles apart:
constexpr int kBasis = 0;     // 9 values, basis[r][c] at kBasis + 3 * r + c: rows are the cell vectors
                              // along periodic axes, unit vectors along open axes (make_basis)
constexpr int kInverse = 9;   // 9 values, inverse[r][c]: fractional s_k = sum_r x_r * inverse[r][k]
constexpr int kPeriodic = 18; // 3 values, 1.0 on periodic axes and 0.0 on open axes
constexpr int kGeometryStride = 21;

// One record of doubles per system describing its bins (a cell list, as the CPU backend builds
// it), `kBinStride` doubles apart; integers are stored exactly as doubles:
constexpr int kBinLower = 0;   // 3 values, lowest fractional coordinate (0 along periodic axes)
constexpr int kBinSpan = 3;    // 3 values, fractional extent (1 along periodic axes; may be 0)
constexpr int kBinCount = 6;   // 3 values, bins along each axis (>= 1)
constexpr int kBinReach = 9;   // 3 values, bins to search each way (images included on periodic axes)
constexpr int kBinOffset = 12; // 1 value, index of the system's first bin among all systems' bins
constexpr int kBinStride = 16;

// Threads per block of the kernels; the pair kernels use one warp of 32 threads per atom.
constexpr int kWrapThreads = 256;
constexpr int kPairThreads = 128;
constexpr int kWarpSize = 32;

}  // namespace cuda_layout
}  // namespace neighbors
}  // namespace mlff
