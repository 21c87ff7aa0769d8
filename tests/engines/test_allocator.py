"""Freed memory stays in the process between MD steps (mlff.engines.allocator).

The setting is process-wide, so the behaviour is checked in fresh processes that load the
allocator module alone (no torch: they start in a fraction of a second). A step-like loop
allocates, touches and frees 6 blocks of 20 MB with C's malloc: with glibc's default thresholds
(which adapt, but never beyond 32 MB for mmap and 64 MB for trimming) every iteration hands the
memory back to the kernel and page-faults it in again; with the engines' setting it does not.
"""

import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch

import mlff
from mlff.engines import allocator
from tests.models.conftest import make_potential

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

STEPS = textwrap.dedent(
    """
    import ctypes, importlib.util, resource, sys
    spec = importlib.util.spec_from_file_location("allocator", sys.argv[1])
    allocator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(allocator)
    print("applied", allocator.retain_freed_memory())
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)
    size = 20 * 1024 * 1024
    faults = []
    for step in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [libc.malloc(size) for _ in range(6)]
        for block in blocks:
            ctypes.memset(block, 1, size)
        for block in blocks:
            libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print("faults", min(faults[2:]))
    """
)


def run_steps(**environment):
    """(whether the thresholds were set, fewest page faults of a late iteration)."""
    env = dict(os.environ, **environment)
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", STEPS, allocator.__file__], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    applied = result.stdout.split("applied")[1].split()[0] == "True"
    return applied, int(result.stdout.split("faults")[-1])


def test_freed_memory_is_reused_without_page_faults():
    applied, faults = run_steps()
    assert applied
    assert faults < 500, "120 MB of fresh pages (~30k faults) at every step"


def test_glibc_defaults_fault_and_the_user_can_opt_out():
    applied, faults = run_steps(MLFF_KEEP_MALLOC="0")
    assert not applied
    assert faults > 10000


def test_engines_set_it():
    mlff.MLFFCalculator(make_potential("schnet", torch.float64))
    assert allocator._applied is not None
    assert allocator._applied == (
        os.environ.get("MLFF_KEEP_MALLOC", "1") != "0"
        and not any(name in os.environ for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"))
    )
