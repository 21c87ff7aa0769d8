"""The CUDA neighbour list against the CPU one, and proof that the CUDA kernel was compiled.

The comparison tests need a GPU and a build with MLFF_WITH_CUDA=ON; they skip otherwise. The
registration test runs wherever MLFF_EXPECT_CUDA_KERNEL=1 is set (CI sets it after a CUDA build,
GPU or not), so that a build that silently dropped the CUDA kernel fails.
"""

import math
import os

import numpy as np
import pytest
import torch

from mlff.neighbors import neighbor_list

from .systems import pair_set, random_system


def _has_cuda_kernel() -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key("mlff::neighbor_list", "CUDA")


if not torch.cuda.is_available():
    _SKIP_REASON = "no CUDA device"
elif not _has_cuda_kernel():
    _SKIP_REASON = "mlff was built without its CUDA kernel (build with MLFF_WITH_CUDA=ON)"
else:
    _SKIP_REASON = ""
cuda_only = pytest.mark.skipif(bool(_SKIP_REASON), reason=_SKIP_REASON or "CUDA available")


@pytest.mark.skipif(
    os.environ.get("MLFF_EXPECT_CUDA_KERNEL") != "1",
    reason="set MLFF_EXPECT_CUDA_KERNEL=1 to check a build made with MLFF_WITH_CUDA=ON",
)
def test_cuda_kernel_is_registered():
    assert _has_cuda_kernel(), (
        "MLFF_EXPECT_CUDA_KERNEL=1 but mlff::neighbor_list has no CUDA kernel: mlff was built without "
        "MLFF_WITH_CUDA=ON, or the CUDA build was replaced by a CPU-only one"
    )
    assert torch._C._dispatch_has_kernel_for_dispatch_key("mlff::neighbor_list", "CPU")


# ------------------------------------------------------------------------------ helpers


def batched_systems(seed: int, n_systems: int, max_atoms: int = 40, max_cutoff_over_height: float = 2.5):
    """Several random systems (random pbc masks, atoms outside the cell) in one shuffled batch.

    The systems share one cutoff: the smallest of the cutoffs random_system drew for them.
    """
    rng = np.random.default_rng(seed)
    systems = [random_system(rng, max_atoms, max_cutoff_over_height) for _ in range(n_systems)]
    cutoff = min(cutoff for _, cutoff in systems)
    positions = np.concatenate([atoms.positions for atoms, _ in systems]).reshape(-1, 3)
    batch = np.concatenate([np.full(len(atoms), g) for g, (atoms, _) in enumerate(systems)]).astype(np.int64)
    order = rng.permutation(len(batch))  # batch need not be sorted
    cell = np.stack([np.asarray(atoms.cell) for atoms, _ in systems])
    pbc = np.stack([atoms.pbc for atoms, _ in systems])
    return positions[order], cell, pbc, batch[order], cutoff


def both_devices(positions, cell, pbc, batch, cutoff, dtype, device="cuda"):
    """(pairs on the CPU, pairs on the GPU, raw GPU outputs) for the same inputs."""
    args = (
        torch.tensor(positions, dtype=dtype),
        torch.tensor(cell, dtype=dtype),
        torch.tensor(pbc, dtype=torch.bool),
    )
    batch = torch.tensor(batch, dtype=torch.long)
    edge_cpu, shift_cpu = neighbor_list(*args, cutoff, batch=batch)
    edge_gpu, shift_gpu = neighbor_list(*(a.to(device) for a in args), cutoff, batch=batch.to(device))
    assert edge_gpu.device.type == "cuda" and shift_gpu.device.type == "cuda"
    assert edge_gpu.dtype == torch.long and shift_gpu.dtype == torch.long
    assert edge_gpu.shape[0] == 2 and shift_gpu.shape == (edge_gpu.shape[1], 3)
    cpu = pair_set(edge_cpu[0], edge_cpu[1], shift_cpu)
    gpu = pair_set(edge_gpu[0].cpu(), edge_gpu[1].cpu(), shift_gpu.cpu())
    return cpu, gpu, (edge_gpu, shift_gpu)


# ------------------------------------------------------------------------------ CUDA vs CPU


@cuda_only
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(12))
def test_random_batches_match_cpu(seed, dtype):
    positions, cell, pbc, batch, cutoff = batched_systems(seed, n_systems=1 + seed % 4)
    cpu, gpu, (edge_index, shifts) = both_devices(positions, cell, pbc, batch, cutoff, dtype)
    assert gpu == cpu
    # every pair is within the cutoff, computed independently in double
    pos = torch.tensor(positions, dtype=dtype).double()
    h = torch.tensor(cell, dtype=dtype).double()
    b = torch.tensor(batch)
    edge_index, shifts = edge_index.cpu(), shifts.cpu()
    vectors = pos[edge_index[1]] - pos[edge_index[0]] + torch.einsum("ek,ekc->ec", shifts.double(), h[b[edge_index[0]]])
    assert (vectors.norm(dim=1) < cutoff * (1 + 1e-12)).all()


@cuda_only
@pytest.mark.parametrize(
    "pbc", [(True, True, True), (True, False, False), (False, True, True), (False, False, True), (False,) * 3]
)
def test_periodicity_masks_match_cpu(pbc):
    rng = np.random.default_rng(7)
    cell = np.array([[4.0, 0.0, 0.0], [1.5, 3.5, 0.0], [-0.7, 0.9, 3.2]])
    positions = rng.uniform(-0.5, 1.5, size=(60, 3)) @ cell
    for cutoff in (1.7, 3.9, 9.0):  # below, near and well above the cell heights
        cpu, gpu, _ = both_devices(positions, cell[None], np.array([pbc]), np.zeros(60), cutoff, torch.float64)
        assert gpu == cpu, (pbc, cutoff)


@cuda_only
@pytest.mark.parametrize("n_atoms", [1000, 3000])
def test_large_system_matches_cpu(n_atoms):
    """Several warps, blocks and 32-atom chunks per system."""
    rng = np.random.default_rng(n_atoms)
    length = (n_atoms / 0.05) ** (1 / 3)  # 0.05 atoms per cubic Angstrom
    cell = length * np.eye(3)
    positions = rng.uniform(0.0, length, size=(n_atoms, 3))
    cpu, gpu, _ = both_devices(positions, cell[None], np.array([[True, True, True]]), np.zeros(n_atoms), 5.0,
                               torch.float32)
    assert len(cpu) > 10 * n_atoms
    assert gpu == cpu


@cuda_only
def test_special_cases_match_cpu():
    # one atom in a cell much smaller than the cutoff: self-images only, many of them
    cpu, gpu, _ = both_devices(np.array([[0.1, 0.2, 0.3]]), 1.5 * np.eye(3)[None], np.array([[True] * 3]),
                               np.zeros(1), 4.0, torch.float64)
    assert gpu == cpu and len(cpu) > 50 and all(i == j for i, j, *_ in cpu)
    # cutoff equal to the cell length: the nearest images are exactly at the cutoff and excluded
    cpu, gpu, _ = both_devices(np.zeros((1, 3)), 3.0 * np.eye(3)[None], np.array([[True] * 3]), np.zeros(1),
                               3.0, torch.float64)
    assert gpu == cpu == set()
    # an open system of one atom: no pairs
    cpu, gpu, _ = both_devices(np.zeros((1, 3)), np.zeros((1, 3, 3)), np.array([[False] * 3]), np.zeros(1), 5.0,
                               torch.float64)
    assert gpu == cpu == set()
    # systems without atoms (with singular or NaN cells, which are then never used) between others
    rng = np.random.default_rng(3)
    cell = np.stack([np.zeros((3, 3)), 3.0 * np.eye(3), np.full((3, 3), math.nan), 4.0 * np.eye(3)])
    pbc = np.array([[True] * 3, [True] * 3, [True] * 3, [True, False, True]])
    batch = rng.permutation(np.array([1] * 10 + [3] * 12))
    positions = rng.uniform(0.0, 4.0, size=(22, 3))
    cpu, gpu, _ = both_devices(positions, cell, pbc, batch, 2.5, torch.float64)
    assert gpu == cpu and len(cpu) > 0


@cuda_only
def test_no_atoms():
    edge_index, shifts = neighbor_list(
        torch.zeros(0, 3, device="cuda"), torch.eye(3, device="cuda"), torch.ones(3, dtype=torch.bool, device="cuda"),
        3.0,
    )
    assert edge_index.shape == (2, 0) and shifts.shape == (0, 3)
    assert edge_index.device.type == "cuda" and edge_index.dtype == torch.long


@cuda_only
def test_deterministic_and_on_the_current_stream():
    positions, cell, pbc, batch, cutoff = batched_systems(42, n_systems=3, max_atoms=80)
    args = [torch.tensor(positions, device="cuda"), torch.tensor(cell, device="cuda"),
            torch.tensor(pbc, device="cuda"), cutoff]
    batch = torch.tensor(batch, device="cuda")
    first = neighbor_list(*args, batch=batch)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        second = neighbor_list(*args, batch=batch)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
@cuda_only
def test_second_device():
    positions, cell, pbc, batch, cutoff = batched_systems(5, n_systems=2)
    cpu, gpu, (edge_index, _) = both_devices(positions, cell, pbc, batch, cutoff, torch.float64, device="cuda:1")
    assert edge_index.device == torch.device("cuda:1")
    assert gpu == cpu


# ------------------------------------------------------------------------------ bad input

CELL = 5.0 * torch.eye(3, dtype=torch.float64)
PBC = torch.tensor([True, True, True])


def _positions(n=4):
    return torch.rand(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 5.0


@cuda_only
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(positions=torch.zeros(4, 3, dtype=torch.int64)), TypeError, "float32 or float64"),
        (dict(cutoff=-1.0), ValueError, "cutoff must be a positive"),
        (dict(batch=torch.tensor([0, 0, 1, 1])), ValueError, "batch values must lie in"),
        (dict(cell=torch.zeros(3, 3, dtype=torch.float64)), ValueError, "singular"),
        (dict(cell=torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)), ValueError, "singular"),
        (dict(cell=torch.full((3, 3), math.nan, dtype=torch.float64)), ValueError, "non-finite"),
        (dict(cutoff=1000.0, cell=2.0 * torch.eye(3, dtype=torch.float64)), ValueError, r"more than the 2\^31 - 1"),
        (dict(cutoff=1000.0, cell=torch.zeros(3, 3, dtype=torch.float64), pbc=torch.tensor([False] * 3)), None, None),
    ],
)
def test_bad_input_errors_as_on_cpu(kwargs, error, message):
    arguments = dict(positions=_positions(), cell=CELL, pbc=PBC, cutoff=3.0, batch=None)
    arguments.update(kwargs)
    on_gpu = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in arguments.items()}
    if error is None:  # valid: open system, huge cutoff, all pairs
        edge_index, _ = neighbor_list(**on_gpu)
        assert edge_index.shape[1] == 4 * 3
        return
    with pytest.raises(error, match=message):
        neighbor_list(**arguments)  # the CPU path raises it ...
    with pytest.raises(error, match=message):
        neighbor_list(**on_gpu)  # ... and so does the CUDA path


@cuda_only
def test_non_finite_positions_and_mixed_devices():
    p = _positions().cuda()
    p[2, 1] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        neighbor_list(p, CELL.cuda(), PBC.cuda(), 3.0)
    with pytest.raises(ValueError, match="one device"):
        neighbor_list(_positions().cuda(), CELL, PBC, 3.0)
