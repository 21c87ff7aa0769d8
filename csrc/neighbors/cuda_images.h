// The compiled CUDA kernels (csrc/neighbors/cuda_kernels.cu) embedded in the library: one cubin
// per target architecture and PTX for newer GPUs. The definitions are generated at build time by
// cmake/cuda_toolkit.py (NVRTC) into the build tree.
#pragma once

#include <cstddef>

namespace mlff {
namespace neighbors {

struct KernelImage {
    int arch;                   // compute capability as major * 10 + minor, e.g. 90 for sm_90
    bool is_ptx;                // true: PTX text (NUL-terminated) for arch and newer; false: cubin
    const unsigned char* data;
    std::size_t size;
};

extern const KernelImage kKernelImages[];
extern const int kNumKernelImages;
extern const char* const kKernelImagesDescription;  // e.g. "sm_80, sm_90 cubins and compute_80 PTX (NVRTC 12.8)"

}  // namespace neighbors
}  // namespace mlff
