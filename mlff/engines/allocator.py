"""Keep freed memory in the process between MD steps (glibc's malloc).

Every MD step allocates and frees the same few hundred tensors, some of them megabytes large.
glibc's malloc returns memory to the kernel when the free space at the top of its heap exceeds
a threshold that it adapts as the program runs, and serves large blocks by fresh ``mmap``
calls. Depending on the order of allocations (which differs between engines: openmm-torch's
``TorchForce`` was hit hardest) a step can then touch tens of megabytes of new pages: 10k to 30k
page faults and +30% CPU time per step for 192 atoms of water, measured with
``benchmarks/md.py``. Fixing the two thresholds at their largest useful values makes steps
after the first reuse the same memory: the process keeps its peak heap, which an MD run needs at
every step anyway.

:func:`retain_freed_memory` is called by the engines (:class:`mlff.MLFFCalculator`,
:func:`mlff.engines.openmm.create_force`); it does nothing where malloc is not glibc's, or where
the user chose thresholds through glibc's environment variables (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, or ``GLIBC_TUNABLES``) or set ``MLFF_KEEP_MALLOC=0``.
"""

import ctypes
import ctypes.util
import os

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Largest value glibc accepts for M_MMAP_THRESHOLD on 64-bit systems (HEAP_MAX_SIZE / 2), bytes.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap kept rather than returned to the kernel, bytes (the
#: largest value of mallopt's int argument, 2 GiB).
TRIM_THRESHOLD = 2**31 - 1

_ENVIRONMENT = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")

_applied = None  # the outcome of the first call


def retain_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds once per process; returns whether they are set.

    Process-wide and idempotent; see the module docstring for what it changes and when it does
    nothing.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("MLFF_KEEP_MALLOC", "1") == "0" or any(name in os.environ for name in _ENVIRONMENT):
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has it (musl has a mallopt that does nothing)
    except (OSError, AttributeError):
        return _applied
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
