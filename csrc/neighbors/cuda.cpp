// CUDA backend of mlff::neighbor_list (host side; the kernels are in cuda_kernels.cu).
//
// Build: this file is ordinary C++ (it needs the CUDA runtime headers and libcudart, not nvcc).
// The kernels are compiled at build time by NVRTC into one cubin per target architecture plus
// PTX (cmake/cuda_toolkit.py) and embedded; at first use on a device the matching image is
// loaded with cudaLibraryLoadData (CUDA >= 12.0) and launched with cudaLaunchKernel on torch's
// current stream. This keeps the build independent of a local nvcc, whose version would have
// to match torch's CUDA (and nvcc 12.x is not on PyPI for Linux).
//
// Algorithm: a cell list (make_bin_grid, bins about one cutoff wide), one warp per atom; see
// the header comment of cuda_kernels.cu. Semantics and errors are those of the CPU backend
// (cpu.cpp): a full list in both directions, distances strictly below the cutoff computed in
// double, no (i, i, 0) pair, self-images included, open axes never shifted; the pairs come out
// sorted by system, then by sender in input order.
//
// Host work per call: check_inputs (as the CPU path), the per-system geometry from make_basis
// (cell and pbc are copied to the host), per-system atom counts and, for systems with open axes,
// the extent of the atoms (for estimated_pairs and the bins); then on the device: a stable sort
// of atoms by system, wrapping, binning, a stable sort by bin, a counting pass, an exclusive
// sum, and a fill pass. Synchronisations: the input checks, the per-system counts, the open-axis
// extents and the total pair count.
#include "neighbors.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "checks.h"
#include "cuda_images.h"
#include "cuda_layout.h"
#include "geometry.h"

namespace mlff {
namespace neighbors {
namespace {

namespace layout = cuda_layout;

struct Kernels {
    cudaKernel_t wrap_positions = nullptr;
    cudaKernel_t bin_atoms = nullptr;
    cudaKernel_t count_pairs = nullptr;
    cudaKernel_t fill_pairs = nullptr;
};

std::string compute_capability_name(int arch) { return "sm_" + std::to_string(arch); }

// The embedded image for a device of compute capability major.minor: the cubin of the same
// major version with the highest minor version not above the device's (cubins run on later
// minor versions of the same major), else the PTX, which the driver compiles for newer GPUs.
const KernelImage* select_image(int major, int minor) {
    const int device_arch = 10 * major + minor;
    const KernelImage* best = nullptr;
    for (int i = 0; i < kNumKernelImages; ++i) {
        const KernelImage& image = kKernelImages[i];
        if (!image.is_ptx && image.arch / 10 == major && image.arch <= device_arch &&
            (best == nullptr || image.arch > best->arch)) {
            best = &image;
        }
    }
    if (best != nullptr) return best;
    for (int i = 0; i < kNumKernelImages; ++i) {
        const KernelImage& image = kKernelImages[i];
        if (image.is_ptx && image.arch <= device_arch && (best == nullptr || image.arch > best->arch)) best = &image;
    }
    return best;
}

cudaKernel_t get_kernel(cudaLibrary_t library, const char* name) {
    cudaKernel_t kernel = nullptr;
    const cudaError_t status = cudaLibraryGetKernel(&kernel, library, name);
    if (status != cudaSuccess) {
        (void)cudaGetLastError();  // clear the error so that later launch checks do not report it
        TORCH_CHECK(false, "neighbor_list: mlff's CUDA kernel ", name, " is missing from its embedded image: ",
                    cudaGetErrorString(status), "; rebuild mlff");
    }
    return kernel;
}

// The kernels for the current device, loaded once per device (thread-safe).
const Kernels& kernels_for_device(int device) {
    static std::mutex mutex;
    static std::unordered_map<int, Kernels> per_device;
    static std::unordered_map<const KernelImage*, cudaLibrary_t> libraries;
    std::lock_guard<std::mutex> lock(mutex);
    auto found = per_device.find(device);
    if (found != per_device.end()) return found->second;

    int major = 0, minor = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    const KernelImage* image = select_image(major, minor);
    TORCH_CHECK(image != nullptr, "neighbor_list: mlff's CUDA kernels were built for ", kKernelImagesDescription,
                ", which cannot run on this GPU (", compute_capability_name(10 * major + minor),
                "); rebuild mlff with MLFF_CUDA_ARCHITECTURES including ", 10 * major + minor);

    auto loaded = libraries.find(image);
    if (loaded == libraries.end()) {
        cudaLibrary_t library = nullptr;
        const cudaError_t status = cudaLibraryLoadData(&library, image->data, nullptr, nullptr, 0, nullptr, nullptr, 0);
        if (status != cudaSuccess) {
            (void)cudaGetLastError();
            TORCH_CHECK(false, "neighbor_list: cannot load mlff's CUDA kernels (",
                        image->is_ptx ? "PTX for " : "cubin for ", compute_capability_name(image->arch), ", from ",
                        kKernelImagesDescription, ") on device ", device, " (",
                        compute_capability_name(10 * major + minor), "): ", cudaGetErrorString(status),
                        ". The NVIDIA driver may be older than the CUDA version mlff was built with.");
        }
        loaded = libraries.emplace(image, library).first;
    }
    Kernels kernels;
    kernels.wrap_positions = get_kernel(loaded->second, "mlff_wrap_positions");
    kernels.bin_atoms = get_kernel(loaded->second, "mlff_bin_atoms");
    kernels.count_pairs = get_kernel(loaded->second, "mlff_count_pairs");
    kernels.fill_pairs = get_kernel(loaded->second, "mlff_fill_pairs");
    return per_device.emplace(device, kernels).first->second;
}

// Launches `kernel` with the given arguments. Every kernel parameter is 8 bytes (a pointer,
// long long or double) and the order must match cuda_kernels.cu.
template <typename... Args>
void launch(cudaKernel_t kernel, int64_t blocks, int threads, cudaStream_t stream, Args... args) {
    static_assert(((sizeof(Args) == 8) && ...), "kernel arguments must be pointers, int64_t or double");
    TORCH_CHECK(blocks > 0 && blocks <= std::numeric_limits<int32_t>::max(),
                "neighbor_list: too many atoms for one CUDA launch (", blocks, " blocks)");
    void* arguments[] = {static_cast<void*>(&args)...};
    C10_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(static_cast<unsigned>(blocks)),
                                    dim3(static_cast<unsigned>(threads)), arguments, 0, stream));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Bins about one cutoff wide: 27 bins per atom with about 12 atoms each in a liquid at a 5 A
// cutoff, so that the 32 lanes of a warp have work (the CPU's half-cutoff bins would give 125
// bins of about 1.5 atoms each).
constexpr double kBinsPerCutoff = 1.0;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

std::tuple<at::Tensor, at::Tensor> neighbor_list_cuda(const at::Tensor& positions, const at::Tensor& cell,
                                                      const at::Tensor& pbc, const at::Tensor& batch, double cutoff) {
    check_inputs(positions, cell, pbc, batch, cutoff);
    TORCH_CHECK_VALUE(positions.is_cuda(), "neighbor_list_cuda: tensors must be on a CUDA device");
    const c10::cuda::CUDAGuard device_guard(positions.device());
    const int64_t n_atoms = positions.size(0);
    const int64_t n_graphs = cell.size(0);
    const auto long_options = positions.options().dtype(at::kLong);
    const auto double_options = positions.options().dtype(at::kDouble);
    if (n_atoms == 0) {
        return {at::empty({2, 0}, long_options), at::empty({0, 3}, long_options)};
    }

    // ---- host: per-system geometry, as the CPU path computes it
    const at::Tensor cell_host = cell.to(at::kCPU, at::kDouble).contiguous();
    const at::Tensor pbc_host = pbc.to(at::kCPU).contiguous();
    const at::Tensor batch_contiguous = batch.contiguous();
    const at::Tensor atoms_per_system = at::bincount(batch_contiguous, {}, n_graphs).to(at::kCPU).contiguous();
    const double* cell_data = cell_host.data_ptr<double>();
    const bool* pbc_data = pbc_host.data_ptr<bool>();
    const int64_t* n_of = atoms_per_system.data_ptr<int64_t>();

    at::Tensor geometry_host = at::empty({n_graphs, layout::kGeometryStride}, at::kDouble);
    double* geometry_data = geometry_host.data_ptr<double>();
    std::vector<SystemBasis> bases(n_graphs);
    bool any_open_axis = false;
    for (int64_t g = 0; g < n_graphs; ++g) {
        Mat3 h;
        std::array<bool, 3> periodic;
        for (int r = 0; r < 3; ++r) {
            for (int c = 0; c < 3; ++c) h[r][c] = cell_data[9 * g + 3 * r + c];
            periodic[r] = pbc_data[3 * g + r];
            if (!periodic[r] && n_of[g] > 0) any_open_axis = true;
        }
        bases[g] = make_basis(h, periodic);
        // A system with an unusable cell gets an open identity basis so that the wrapping kernel
        // is well defined; the error is raised below if the system has atoms (as on the CPU).
        const SystemBasis usable = bases[g].error.empty()
                                       ? bases[g]
                                       : make_basis(Mat3{Vec3{1.0, 0.0, 0.0}, Vec3{0.0, 1.0, 0.0}, Vec3{0.0, 0.0, 1.0}},
                                                    {false, false, false});
        double* record = geometry_data + layout::kGeometryStride * g;
        for (int r = 0; r < 3; ++r) {
            for (int c = 0; c < 3; ++c) {
                record[layout::kBasis + 3 * r + c] = usable.basis[r][c];
                record[layout::kInverse + 3 * r + c] = usable.inverse_basis[r][c];
            }
        }
        for (int k = 0; k < 3; ++k) record[layout::kPeriodic + k] = usable.periodic[k] ? 1.0 : 0.0;
    }

    // ---- device: sort atoms by system (stable: input order within a system) and wrap them
    const auto device = positions.device();
    const at::Tensor geometry = geometry_host.to(device);
    const at::Tensor positions64 = positions.to(at::kDouble).contiguous();
    const auto sorted = at::sort(batch_contiguous, /*stable=*/true, /*dim=*/0, /*descending=*/false);
    const at::Tensor system_of = std::get<0>(sorted).contiguous();
    const at::Tensor order = std::get<1>(sorted).contiguous();
    at::Tensor wrapped = at::empty({3, n_atoms}, double_options);
    at::Tensor fractional = at::empty({3, n_atoms}, double_options);
    at::Tensor image = at::empty({n_atoms, 3}, long_options);

    const int current_device = positions.get_device();
    const Kernels& kernels = kernels_for_device(current_device);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(current_device).stream();
    launch(kernels.wrap_positions, ceil_div(n_atoms, layout::kWrapThreads), layout::kWrapThreads, stream,
           positions64.const_data_ptr<double>(), order.const_data_ptr<int64_t>(), system_of.const_data_ptr<int64_t>(),
           geometry.const_data_ptr<double>(), n_atoms, wrapped.mutable_data_ptr<double>(),
           fractional.mutable_data_ptr<double>(), image.mutable_data_ptr<int64_t>());

    // ---- host: errors, pair-count estimates and bins, system by system as on the CPU
    at::Tensor lower_host, upper_host;
    if (any_open_axis) {
        const at::Tensor index = system_of.unsqueeze(0).expand({3, n_atoms}).contiguous();
        const at::Tensor zeros = at::zeros({3, n_graphs}, double_options);
        lower_host = zeros.scatter_reduce(1, index, fractional, "amin", /*include_self=*/false).to(at::kCPU).contiguous();
        upper_host = zeros.scatter_reduce(1, index, fractional, "amax", /*include_self=*/false).to(at::kCPU).contiguous();
    }
    at::Tensor bins_host = at::zeros({n_graphs, layout::kBinStride}, at::kDouble);
    double* bins_data = bins_host.data_ptr<double>();
    int64_t total_bins = 0;
    for (int64_t g = 0; g < n_graphs; ++g) {
        double* record = bins_data + layout::kBinStride * g;
        record[layout::kBinOffset] = static_cast<double>(total_bins);
        if (n_of[g] == 0) {  // one empty bin, never searched
            for (int k = 0; k < 3; ++k) record[layout::kBinCount + k] = 1.0;
            total_bins += 1;
            continue;
        }
        const SystemBasis& basis = bases[g];
        TORCH_CHECK_VALUE(basis.error.empty(), "neighbor_list: system ", g, ": ", basis.error,
                          "; give three linearly independent lattice vectors (rows of cell) for periodic axes");
        double lower[3], span[3], length[3];
        for (int k = 0; k < 3; ++k) {
            if (basis.periodic[k]) {
                lower[k] = 0.0;
                span[k] = 1.0;
            } else {
                lower[k] = lower_host.data_ptr<double>()[k * n_graphs + g];
                span[k] = upper_host.data_ptr<double>()[k * n_graphs + g] - lower[k];
            }
            length[k] = span[k] * basis.heights[k];
        }
        const double pair_estimate = estimated_pairs(n_of[g], length, basis.periodic.data(), cutoff);
        TORCH_CHECK_VALUE(pair_estimate < static_cast<double>(kMaxPairs), "neighbor_list: system ", g,
                          " would have about ", static_cast<int64_t>(pair_estimate), " pairs within the cutoff of ",
                          cutoff, " A, more than the 2^31 - 1 supported; use a smaller cutoff or check the cell "
                          "(is it in Angstrom?)");
        const BinGrid grid = make_bin_grid(length, basis.periodic.data(), n_of[g], cutoff, kBinsPerCutoff);
        for (int k = 0; k < 3; ++k) {
            record[layout::kBinLower + k] = lower[k];
            record[layout::kBinSpan + k] = span[k];
            record[layout::kBinCount + k] = static_cast<double>(grid.n_bins[k]);
            record[layout::kBinReach + k] = static_cast<double>(grid.reach[k]);
        }
        total_bins += grid.total();
    }

    // ---- device: bin the atoms, order them by bin (stable), find where each bin starts
    const at::Tensor bins = bins_host.to(device);
    at::Tensor bin_of = at::empty({n_atoms}, long_options);
    at::Tensor bin_xyz = at::empty({n_atoms, 3}, long_options);
    launch(kernels.bin_atoms, ceil_div(n_atoms, layout::kWrapThreads), layout::kWrapThreads, stream,
           fractional.const_data_ptr<double>(), system_of.const_data_ptr<int64_t>(), bins.const_data_ptr<double>(),
           n_atoms, bin_of.mutable_data_ptr<int64_t>(), bin_xyz.mutable_data_ptr<int64_t>());
    const auto by_bin = at::sort(bin_of, /*stable=*/true, /*dim=*/0, /*descending=*/false);
    const at::Tensor bin_atoms = std::get<1>(by_bin).contiguous();
    const at::Tensor bin_start =
        at::searchsorted(std::get<0>(by_bin).contiguous(), at::arange(total_bins + 1, long_options)).contiguous();

    // ---- device: count, exclusive sum, fill
    const double cutoff2 = cutoff * cutoff;
    const int64_t pair_blocks = ceil_div(n_atoms, layout::kPairThreads / layout::kWarpSize);
    at::Tensor counts = at::empty({n_atoms}, long_options);
    launch(kernels.count_pairs, pair_blocks, layout::kPairThreads, stream, wrapped.const_data_ptr<double>(),
           system_of.const_data_ptr<int64_t>(), geometry.const_data_ptr<double>(), bins.const_data_ptr<double>(),
           bin_xyz.const_data_ptr<int64_t>(), bin_start.const_data_ptr<int64_t>(), bin_atoms.const_data_ptr<int64_t>(),
           n_atoms, cutoff2, counts.mutable_data_ptr<int64_t>());
    const at::Tensor pair_ends = at::cumsum(counts, 0);
    const int64_t n_pairs = pair_ends[n_atoms - 1].item<int64_t>();
    TORCH_CHECK_VALUE(n_pairs <= kMaxPairs, "neighbor_list: more than 2^31 - 1 pairs within the cutoff of ", cutoff,
                      " A; use a smaller cutoff or fewer atoms per call");
    at::Tensor edge_index = at::empty({2, n_pairs}, long_options);
    at::Tensor cell_shifts = at::empty({n_pairs, 3}, long_options);
    if (n_pairs > 0) {
        const at::Tensor pair_offsets = (pair_ends - counts).contiguous();
        launch(kernels.fill_pairs, pair_blocks, layout::kPairThreads, stream, wrapped.const_data_ptr<double>(),
               system_of.const_data_ptr<int64_t>(), geometry.const_data_ptr<double>(), bins.const_data_ptr<double>(),
               bin_xyz.const_data_ptr<int64_t>(), bin_start.const_data_ptr<int64_t>(),
               bin_atoms.const_data_ptr<int64_t>(), n_atoms, cutoff2, counts.const_data_ptr<int64_t>(),
               image.const_data_ptr<int64_t>(), order.const_data_ptr<int64_t>(), pair_offsets.const_data_ptr<int64_t>(),
               n_pairs, edge_index.mutable_data_ptr<int64_t>(), cell_shifts.mutable_data_ptr<int64_t>());
    }
    return {edge_index, cell_shifts};
}

}  // namespace neighbors
}  // namespace mlff
