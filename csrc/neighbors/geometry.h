// Geometry of one periodic (or partly periodic, or open) system, shared by the
// CPU and CUDA neighbour-list kernels. Everything here runs on the host in double.
//
// Convention (written once, used everywhere in mlff):
//     r_ij = r_j - r_i + S_ij @ H
// with H the cell (rows are lattice vectors, Angstrom) and S_ij integer image offsets.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

namespace mlff {
namespace neighbors {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

inline Vec3 cross(const Vec3& a, const Vec3& b) {
    return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }

inline double determinant(const Mat3& m) { return dot(m[0], cross(m[1], m[2])); }

// Inverse of a row-vector basis: s = r @ inverse(B) gives fractional coordinates.
inline Mat3 inverse(const Mat3& b) {
    const double det = determinant(b);
    const Vec3 c0 = cross(b[1], b[2]);
    const Vec3 c1 = cross(b[2], b[0]);
    const Vec3 c2 = cross(b[0], b[1]);
    // inverse(B)[k][i] = cofactor column i, component k
    Mat3 inv;
    for (int k = 0; k < 3; ++k) {
        inv[k] = {c0[k] / det, c1[k] / det, c2[k] / det};
    }
    return inv;
}

// A basis adapted to the periodicity of one system.
//
// Rows of `basis` are the cell vectors along periodic axes; along open axes they are unit
// vectors orthogonal to the periodic ones (the cell row there is ignored, as in ASE), so
// that the fractional coordinate along a periodic axis is the same as in the full cell.
struct SystemBasis {
    Mat3 basis;
    Mat3 inverse_basis;
    Vec3 heights;  // distance between opposite faces of the basis parallelepiped, Angstrom
    std::array<bool, 3> periodic;
    std::string error;  // empty when the cell is usable
};

inline Vec3 any_perpendicular(const Vec3& a) {
    // the coordinate axis least aligned with `a` gives a well-conditioned cross product
    int axis = 0;
    for (int k = 1; k < 3; ++k) {
        if (std::fabs(a[k]) < std::fabs(a[axis])) axis = k;
    }
    Vec3 e = {0.0, 0.0, 0.0};
    e[axis] = 1.0;
    const Vec3 p = cross(a, e);
    return scaled(p, 1.0 / norm(p));
}

inline SystemBasis make_basis(const Mat3& cell, const std::array<bool, 3>& pbc) {
    SystemBasis out;
    out.periodic = pbc;
    int n_periodic = 0;
    int periodic_axes[3];
    int open_axes[3];
    int n_open = 0;
    for (int k = 0; k < 3; ++k) {
        if (pbc[k]) {
            periodic_axes[n_periodic++] = k;
        } else {
            open_axes[n_open++] = k;
        }
        if (pbc[k]) {
            for (int c = 0; c < 3; ++c) {
                if (!std::isfinite(cell[k][c])) {
                    out.error = "cell contains non-finite values along a periodic axis";
                    return out;
                }
            }
        }
    }
    // How non-degenerate the periodic part is: |volume| / product of lengths, in [0, 1].
    constexpr double kMinimumSine = 1e-8;
    if (n_periodic == 1) {
        const Vec3& a = cell[periodic_axes[0]];
        if (norm(a) < 1e-12) {
            out.error = "the cell vector along the periodic axis has zero length";
            return out;
        }
        const Vec3 u = any_perpendicular(a);
        const Vec3 v = cross(scaled(a, 1.0 / norm(a)), u);
        out.basis[periodic_axes[0]] = a;
        out.basis[open_axes[0]] = u;
        out.basis[open_axes[1]] = v;
    } else if (n_periodic == 2) {
        const Vec3& a = cell[periodic_axes[0]];
        const Vec3& b = cell[periodic_axes[1]];
        const Vec3 n = cross(a, b);
        if (norm(a) < 1e-12 || norm(b) < 1e-12 || norm(n) < kMinimumSine * norm(a) * norm(b)) {
            out.error = "the two periodic cell vectors are zero or parallel (singular cell)";
            return out;
        }
        out.basis[periodic_axes[0]] = a;
        out.basis[periodic_axes[1]] = b;
        out.basis[open_axes[0]] = scaled(n, 1.0 / norm(n));
    } else if (n_periodic == 3) {
        const double lengths = norm(cell[0]) * norm(cell[1]) * norm(cell[2]);
        if (!(lengths > 0.0) || std::fabs(determinant(cell)) < kMinimumSine * lengths) {
            out.error = "the cell is singular (zero volume)";
            return out;
        }
        out.basis = cell;
    } else {
        out.basis = {Vec3{1.0, 0.0, 0.0}, Vec3{0.0, 1.0, 0.0}, Vec3{0.0, 0.0, 1.0}};
    }
    out.inverse_basis = inverse(out.basis);
    const double volume = std::fabs(determinant(out.basis));
    for (int k = 0; k < 3; ++k) {
        out.heights[k] = volume / norm(cross(out.basis[(k + 1) % 3], out.basis[(k + 2) % 3]));
    }
    return out;
}

// The bins of a cell list over one system (CPU and CUDA backends alike): about cutoff /
// bins_per_cutoff wide along each axis of the basis, at most max(8, 2 n_atoms) in all, and the
// number of bins to search each way so that every pair within the cutoff is found (images
// included along periodic axes; along open axes never more than the grid).
//   lengths: per axis, the span of the atoms' fractional coordinates times the height, Angstrom
//   (the height itself along periodic axes)
struct BinGrid {
    int64_t n_bins[3];
    int64_t reach[3];
    int64_t total() const { return n_bins[0] * n_bins[1] * n_bins[2]; }
};

inline BinGrid make_bin_grid(const double lengths[3], const bool periodic[3], int64_t n_atoms, double cutoff,
                             double bins_per_cutoff) {
    BinGrid grid;
    for (int k = 0; k < 3; ++k) {
        grid.n_bins[k] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(lengths[k] * bins_per_cutoff / cutoff)));
    }
    const int64_t max_bins = std::max<int64_t>(8, 2 * n_atoms);
    while (grid.total() > max_bins) {
        const int k = static_cast<int>(std::max_element(grid.n_bins, grid.n_bins + 3) - grid.n_bins);
        grid.n_bins[k] = std::max<int64_t>(1, grid.n_bins[k] / 2);
    }
    for (int k = 0; k < 3; ++k) {
        const double bin_width = lengths[k] / static_cast<double>(grid.n_bins[k]);
        grid.reach[k] = bin_width > 0.0 ? static_cast<int64_t>(std::ceil(cutoff / bin_width * (1.0 + 1e-12))) : 0;
        if (!periodic[k]) grid.reach[k] = std::min(grid.reach[k], grid.n_bins[k] - 1);
    }
    return grid;
}

inline int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

}  // namespace neighbors
}  // namespace mlff
