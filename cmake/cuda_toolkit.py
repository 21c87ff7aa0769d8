"""Build helper for mlff's CUDA kernels (called by CMakeLists.txt when MLFF_WITH_CUDA=ON).

mlff does not need nvcc: its kernels (csrc/neighbors/cuda_kernels.cu) are compiled by NVRTC,
the CUDA runtime compiler that every CUDA build of torch already depends on, into one cubin per
target architecture plus PTX for newer GPUs, and embedded in the operator library. The host code
is plain C++ and needs only the CUDA runtime headers and libcudart. (nvcc 12.x is not on PyPI for
Linux: nvidia-cuda-nvcc-cu12 ships ptxas, libnvvm and the crt/ headers but no nvcc front end.)

    python cuda_toolkit.py locate <torch.version.cuda> [root]
        Prints four lines: the include dir with cuda_runtime_api.h, the include dir with
        crt/host_defines.h, libcudart.so.<major> and libnvrtc.so.<major>, of torch's CUDA major.
        Looks in `root` (MLFF_CUDA_ROOT) if given, else in the nvidia-* pip packages next to torch,
        else in $CUDA_HOME, $CUDA_PATH and /usr/local/cuda.
    python cuda_toolkit.py embed --nvrtc LIB --source FILE --include DIR --archs 80;90 --output FILE
        Compiles FILE with NVRTC and writes a C++ file defining mlff::neighbors::kKernelImages.
"""

import argparse
import ctypes
import glob
import os
import re
import sys


def _fail(message: str) -> None:
    print(f"mlff: {message}", file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------------------------- locate


def _runtime_version(include_dir: str) -> int:
    with open(os.path.join(include_dir, "cuda_runtime_api.h"), encoding="utf-8", errors="replace") as header:
        match = re.search(r"^#define\s+CUDART_VERSION\s+(\d+)", header.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _first(directories, relative: str):
    for directory in directories:
        if os.path.exists(os.path.join(directory, relative)):
            return directory
    return None


def _candidate_sets(major: str, root: str):
    """(description, include dirs, library dirs) to try in order."""
    if root:
        yield (f"MLFF_CUDA_ROOT={root}", [os.path.join(root, "include"),
                                          os.path.join(root, "targets", "x86_64-linux", "include")],
               [os.path.join(root, sub) for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib"))])
        return
    try:
        import nvidia  # namespace package of the nvidia-*-cu12 / nvidia-* wheels that torch depends on

        packages = sorted(p for base in nvidia.__path__ for p in glob.glob(os.path.join(base, "*")) if os.path.isdir(p))
    except ImportError:
        packages = []
    if packages:
        yield ("the nvidia-* pip packages", [os.path.join(p, "include") for p in packages],
               [os.path.join(p, "lib") for p in packages])
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            home = os.environ[variable]
            yield (f"${variable}={home}", [os.path.join(home, "include")],
                   [os.path.join(home, "lib64"), os.path.join(home, "lib")])
    yield ("/usr/local/cuda", ["/usr/local/cuda/include"], ["/usr/local/cuda/lib64", "/usr/local/cuda/lib"])


def locate(cuda_version: str, root: str) -> None:
    major = cuda_version.split(".")[0]
    tried = []
    for description, includes, libraries in _candidate_sets(major, root):
        runtime_include = _first(includes, "cuda_runtime_api.h")
        crt_include = _first(includes, os.path.join("crt", "host_defines.h"))
        cudart_dir = _first(libraries, f"libcudart.so.{major}")
        nvrtc_dir = _first(libraries, f"libnvrtc.so.{major}")
        missing = [name for name, found in (("cuda_runtime_api.h", runtime_include),
                                           ("crt/host_defines.h", crt_include),
                                           (f"libcudart.so.{major}", cudart_dir),
                                           (f"libnvrtc.so.{major}", nvrtc_dir)) if not found]
        if not missing:
            version = _runtime_version(runtime_include)
            if str(version // 1000) != major:
                tried.append(f"{description}: CUDA runtime headers are version {version}, not {major}.x")
                continue
            print(runtime_include)
            print(crt_include)
            print(os.path.join(cudart_dir, f"libcudart.so.{major}"))
            print(os.path.join(nvrtc_dir, f"libnvrtc.so.{major}"))
            return
        tried.append(f"{description}: missing {', '.join(missing)}")
    _fail(
        f"MLFF_WITH_CUDA=ON needs the CUDA {major} runtime headers (with crt/), libcudart and libnvrtc.\n  "
        + "\n  ".join(tried)
        + f"\n  With a pip-installed CUDA build of torch, install the missing headers with pip install "
        + (f'"nvidia-cuda-nvcc-cu12=={cuda_version}.*"' if major == "12" else f'"nvidia-cuda-crt=={cuda_version}.*"')
        + " (the runtime and NVRTC packages come with torch), or point MLFF_CUDA_ROOT at a CUDA "
        + f"{major}.x toolkit."
    )


# ------------------------------------------------------------------------------------------ embed


class _Nvrtc:
    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(self, status: int, what: str) -> None:
        if status != 0:
            _fail(f"NVRTC {what} failed: {self.lib.nvrtcGetErrorString(status).decode()}")

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def supported_archs(self):
        count = ctypes.c_int()
        self.check(self.lib.nvrtcGetNumSupportedArchs(ctypes.byref(count)), "nvrtcGetNumSupportedArchs")
        archs = (ctypes.c_int * count.value)()
        self.check(self.lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
        return list(archs)

    def compile(self, source: bytes, name: bytes, options, ptx: bool) -> bytes:
        program = ctypes.c_void_p()
        self.check(self.lib.nvrtcCreateProgram(ctypes.byref(program), source, name, 0, None, None),
                   "nvrtcCreateProgram")
        try:
            encoded = [option.encode() for option in options]
            array = (ctypes.c_char_p * len(encoded))(*encoded)
            status = self.lib.nvrtcCompileProgram(program, len(encoded), array)
            log_size = ctypes.c_size_t()
            self.check(self.lib.nvrtcGetProgramLogSize(program, ctypes.byref(log_size)), "nvrtcGetProgramLogSize")
            log = ctypes.create_string_buffer(log_size.value)
            self.check(self.lib.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
            text = log.value.decode(errors="replace").strip()
            # torch still builds for sm_70, which NVRTC 12.x flags as deprecated on every compile
            text = "\n".join(line for line in text.splitlines() if "are deprecated" not in line).strip()
            if status != 0:
                _fail(f"NVRTC could not compile {name.decode()} ({' '.join(options)}):\n{text}")
            if text:
                print(f"mlff: NVRTC ({' '.join(options)}):\n{text}", file=sys.stderr)
            size = ctypes.c_size_t()
            if ptx:
                self.check(self.lib.nvrtcGetPTXSize(program, ctypes.byref(size)), "nvrtcGetPTXSize")
                data = ctypes.create_string_buffer(size.value)
                self.check(self.lib.nvrtcGetPTX(program, data), "nvrtcGetPTX")
            else:
                self.check(self.lib.nvrtcGetCUBINSize(program, ctypes.byref(size)), "nvrtcGetCUBINSize")
                data = ctypes.create_string_buffer(size.value)
                self.check(self.lib.nvrtcGetCUBIN(program, data), "nvrtcGetCUBIN")
            return data.raw[: size.value]  # PTX keeps its terminating NUL, as cudaLibraryLoadData wants
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(program))


def _c_array(name: str, data: bytes) -> str:
    lines = []
    for start in range(0, len(data), 24):
        lines.append("    " + ",".join(str(byte) for byte in data[start : start + 24]) + ",")
    return f"alignas(64) const unsigned char {name}[] = {{\n" + "\n".join(lines) + "\n};\n"


def embed(args) -> None:
    nvrtc = _Nvrtc(args.nvrtc)
    version = nvrtc.version()
    supported = nvrtc.supported_archs()
    requested = sorted({int(a) for a in re.split(r"[;, ]+", args.archs) if a.strip()})
    archs = [a for a in requested if a in supported]
    for dropped in sorted(set(requested) - set(archs)):
        print(f"mlff: NVRTC {version[0]}.{version[1]} cannot target sm_{dropped}; skipped", file=sys.stderr)
    if not archs:
        _fail(f"none of the CUDA architectures {requested} is supported by NVRTC {version} ({supported})")
    with open(args.source, "rb") as handle:
        source = handle.read()
    common = ["--std=c++17", "--fmad=false", f"--include-path={args.include}"]
    images = []  # (arch, is_ptx, bytes)
    for arch in archs:
        images.append((arch, False, nvrtc.compile(source, os.path.basename(args.source).encode(),
                                                  [f"--gpu-architecture=sm_{arch}", *common], ptx=False)))
    # PTX of the oldest architecture: the driver compiles it for GPUs newer than every cubin
    images.append((archs[0], True, nvrtc.compile(source, os.path.basename(args.source).encode(),
                                                 [f"--gpu-architecture=compute_{archs[0]}", *common], ptx=True)))

    description = ", ".join(f"sm_{a}" for a in archs) + f" cubins and compute_{archs[0]} PTX (NVRTC {version[0]}.{version[1]})"
    parts = [
        "// Generated by cmake/cuda_toolkit.py from csrc/neighbors/cuda_kernels.cu; do not edit.\n",
        '#include "cuda_images.h"\n\n',
        "namespace mlff {\nnamespace neighbors {\nnamespace {\n\n",
    ]
    for index, (_, _, data) in enumerate(images):
        parts.append(_c_array(f"image_{index}", data))
    parts.append("\n}  // namespace\n\n")
    parts.append("const KernelImage kKernelImages[] = {\n")
    for index, (arch, is_ptx, _) in enumerate(images):
        parts.append(f"    {{{arch}, {'true' if is_ptx else 'false'}, image_{index}, sizeof(image_{index})}},\n")
    parts.append("};\n")
    parts.append(f"const int kNumKernelImages = {len(images)};\n")
    parts.append(f'const char* const kKernelImagesDescription = "{description}";\n\n')
    parts.append("}  // namespace neighbors\n}  // namespace mlff\n")
    text = "".join(parts)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    old = None
    if os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as handle:
            old = handle.read()
    if old != text:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(f"mlff: embedded {description}")


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "locate":
        locate(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["embed"])
    parser.add_argument("--nvrtc", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--include", required=True)
    parser.add_argument("--archs", required=True)
    parser.add_argument("--output", required=True)
    embed(parser.parse_args())


if __name__ == "__main__":
    main()
