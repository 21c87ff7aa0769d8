"""mlff on a CUDA GPU: checks against the CPU and timings against vesin, in one short run.

Meant for a machine with a GPU and mlff built with ``MLFF_WITH_CUDA=ON`` (CI has no GPU, so
this is not a test; ``tests/neighbors/test_cuda.py`` holds the pytest side of the same checks).
Everything it prints is measured in the run; the exit status is 1 if a check fails.

1. **Neighbour list.** Periodic boxes of water (``benchmarks/models.py``'s ``water_box``,
   1 g/cm^3) of ``--sizes`` atoms, cutoff 5 A, float64 (vesin computes in float64 whatever
   it is given): ``mlff.neighbors.neighbor_list`` on the GPU against

   * vesin-torch on the GPU (``vesin.torch.NeighborList(5.0, full_list=True).compute(...,
     quantities="ijS")``, the same full list with integer shifts), when it is installed;
   * mlff's own C++ op on one CPU thread (the CPU benchmark's setting).

   Timings are medians of back-to-back calls after warm-up, each call ended by
   ``torch.cuda.synchronize()``. Checks: the GPU pair set equals the CPU one (as sets of
   (i, j, shift)) up to ``--check-max-atoms``, and vesin's pair count equals mlff's.

2. **Models.** Every registered family, at ``benchmarks/models.py``'s hyperparameters, random
   weights: energy and forces of a 192-atom box in float64 on the GPU against the CPU (the
   largest relative difference is printed; checked below 1e-9), then float32 throughput on the
   GPU: one MD step's call from an ``ase.Atoms`` (graph with the GPU neighbour list, forward,
   backward, forces copied to the host), median time and atoms/s.

3. **Deployed file.** A MACE potential written by ``mlff.deploy`` (TorchScript, neighbour list
   inside) and loaded with ``mlff.load_potential(path, device="cuda")`` gives the eager
   model's energy and forces; ``mlff.MLFFCalculator(path, device="cuda")`` then runs 200 steps
   of ASE velocity-Verlet NVE (0.5 fs) on a 192-atom water box from 300 K, and the drift of the
   total energy is printed (checked below 1e-3 eV/atom).

Usage::

    python benchmarks/gpu.py                     # sizes 1536 12288 98304 393216
    python benchmarks/gpu.py --quick             # 1536 and 12288 atoms
    python benchmarks/gpu.py --device cpu --quick   # dry run of the code paths on a CPU
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

import torch  # before everything else: torch first, then the rest (see ../README)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import mlff  # noqa: E402
import mlff.graph  # noqa: E402
import mlff.models  # noqa: E402
from models import FAMILIES, water_box  # noqa: E402  (benchmarks/models.py)
# benchmarks/neighbors.py: pair-set helpers; importing it also sets torch to one CPU thread,
# the setting of the CPU baseline below (as in the CPU benchmark)
from neighbors import as_ijs, sorted_pairs  # noqa: E402

CUTOFF = 5.0  # Angstrom
PARTS = ("neighbors", "models", "deployed")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(call: Callable[[], object], device: torch.device, warmup: int = 3, repeats: int = 10, budget_s: float = 5.0) -> float:
    """Median wall time (s) of ``call`` over at most ``repeats`` calls or ``budget_s`` seconds."""
    for _ in range(warmup):
        call()
    synchronize(device)
    times: List[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - started < budget_s):
        begin = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


# ------------------------------------------------------------------------------------- 1


def bench_neighbors(sizes: List[int], device: torch.device, check_max_atoms: int, failures: List[str]) -> List[Dict]:
    try:
        from vesin.torch import NeighborList as VesinNeighborList
    except ImportError:
        VesinNeighborList = None
        print("vesin-torch is not installed: no GPU peer (pip install vesin-torch)")
    rows = []
    for n_atoms in sizes:
        atoms = water_box(n_atoms)
        positions = torch.tensor(atoms.get_positions(), dtype=torch.float64)
        cell = torch.tensor(np.asarray(atoms.get_cell()), dtype=torch.float64)
        pbc = torch.tensor([True, True, True])
        on_device = (positions.to(device), cell.to(device), pbc.to(device))
        row: Dict[str, object] = {"atoms": len(atoms)}

        edges, shifts = mlff.neighbors.neighbor_list(*on_device, CUTOFF)
        row["pairs"] = int(edges.shape[1])
        row["mlff_ms"] = 1e3 * median_time(lambda: mlff.neighbors.neighbor_list(*on_device, CUTOFF), device)
        if len(atoms) <= check_max_atoms:
            reference = mlff.neighbors.neighbor_list(positions, cell, pbc, CUTOFF)
            on_gpu = sorted_pairs(as_ijs("mlff", (edges.cpu(), shifts.cpu())))
            same = np.array_equal(on_gpu, sorted_pairs(as_ijs("mlff", reference)))
            row["same_as_cpu"] = same
            if not same:
                failures.append(f"neighbour list, {len(atoms)} atoms: {device} pairs differ from the CPU's")
        if len(atoms) <= 100_000:  # one CPU thread: seconds beyond that
            row["mlff_cpu_1thread_ms"] = 1e3 * median_time(
                lambda: mlff.neighbors.neighbor_list(positions, cell, pbc, CUTOFF), torch.device("cpu"), warmup=1, repeats=5
            )
        if VesinNeighborList is not None:
            vesin = VesinNeighborList(CUTOFF, full_list=True)
            points, box = on_device[0], on_device[1]
            i, j, s = vesin.compute(points=points, box=box, periodic=True, quantities="ijS")
            row["vesin_pairs"] = int(i.shape[0])
            if int(i.shape[0]) != row["pairs"]:
                failures.append(f"neighbour list, {len(atoms)} atoms: vesin finds {int(i.shape[0])} pairs, mlff {row['pairs']}")
            row["vesin_ms"] = 1e3 * median_time(lambda: vesin.compute(points=points, box=box, periodic=True, quantities="ijS"), device)
            row["vesin_over_mlff"] = row["vesin_ms"] / row["mlff_ms"]
        rows.append(row)
        print("  ", json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return rows


# ------------------------------------------------------------------------------------- 2


def build_potential(family: str, dtype: torch.dtype, device: torch.device) -> mlff.Potential:
    hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in FAMILIES[family].hyper.items()}
    torch.manual_seed(0)
    model = mlff.models.build(family, **hyper)
    return mlff.Potential(model).to(dtype=dtype, device=device).eval().requires_grad_(False)


def bench_models(families: List[str], sizes: List[int], device: torch.device, failures: List[str]) -> List[Dict]:
    rows = []
    small = water_box(192)
    for family in families:
        cpu_potential = build_potential(family, torch.float64, torch.device("cpu"))
        device_potential = build_potential(family, torch.float64, device)
        reference = cpu_potential(mlff.graph.from_atoms(small, CUTOFF, torch.float64), compute_forces=True)
        result = device_potential(mlff.graph.from_atoms(small, CUTOFF, torch.float64, device), compute_forces=True)
        energy_error = abs(float(result["energy"].sum()) - float(reference["energy"].sum())) / max(1e-12, abs(float(reference["energy"].sum())))
        force_error = float((result["forces"].cpu() - reference["forces"]).abs().max() / reference["forces"].abs().max())
        if not (energy_error < 1e-9 and force_error < 1e-9):
            failures.append(f"{family}: float64 energy/forces on {device} differ from the CPU's (relative {energy_error:.1e} / {force_error:.1e})")
        print(f"  {family}: float64 {device} vs cpu, 192 atoms: relative difference energy {energy_error:.1e}, forces {force_error:.1e}", flush=True)

        potential = build_potential(family, torch.float32, device)
        for n_atoms in sizes:
            atoms = water_box(n_atoms)

            def step():
                graph = mlff.graph.from_atoms(atoms, CUTOFF, torch.float32, device)
                return potential(graph, compute_forces=True)["forces"].cpu().numpy()

            try:
                seconds = median_time(step, device, warmup=2, repeats=10, budget_s=10.0)
            except torch.OutOfMemoryError:
                print(f"  {family} float32 {len(atoms)} atoms: out of GPU memory")
                torch.cuda.empty_cache()
                continue
            row = {"family": family, "atoms": len(atoms), "ms_per_step": 1e3 * seconds, "atoms_per_s": len(atoms) / seconds}
            if device.type == "cuda":
                row["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
                torch.cuda.reset_peak_memory_stats(device)
            rows.append(row)
            print("  ", json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return rows


# ------------------------------------------------------------------------------------- 3


def check_deployed(device: torch.device, failures: List[str]) -> Dict:
    import ase.md.velocitydistribution
    import ase.md.verlet
    import ase.units

    potential = build_potential("mace", torch.float64, torch.device("cpu"))
    atoms = water_box(192)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mace.pt")
        mlff.deploy(potential, path)
        loaded = mlff.load_potential(path, device=str(device))
        out = loaded(
            torch.tensor(atoms.get_positions(), device=device),
            torch.tensor(atoms.get_atomic_numbers(), device=device),
            torch.tensor(np.asarray(atoms.get_cell()), device=device),
            torch.tensor([True, True, True], device=device),
        )
        eager = potential(mlff.graph.from_atoms(atoms, CUTOFF, torch.float64), compute_forces=True)
        force_error = float((out["forces"].cpu() - eager["forces"]).abs().max())
        energy_error = abs(float(out["energy"].sum()) - float(eager["energy"].sum()))
        print(f"  deployed file on {device} vs eager on cpu: |dE| {energy_error:.1e} eV, max |dF| {force_error:.1e} eV/A")
        if not (energy_error < 1e-8 and force_error < 1e-8):
            failures.append(f"deployed file on {device} differs from the eager model (dE {energy_error:.1e}, dF {force_error:.1e})")

        atoms.calc = mlff.MLFFCalculator(path, device=str(device))
        ase.md.velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
        dynamics = ase.md.verlet.VelocityVerlet(atoms, timestep=0.5 * ase.units.fs)
        totals = []
        dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=10)
        started = time.perf_counter()
        dynamics.run(200)
        seconds = time.perf_counter() - started
    drift = (max(totals) - min(totals)) / len(atoms)
    print(f"  NVE on {device}, 192 atoms, 200 steps of 0.5 fs: total energy spread {drift:.2e} eV/atom, {1e3 * seconds / 200:.1f} ms/step")
    if not drift < 1e-3:
        failures.append(f"NVE through MLFFCalculator on {device}: energy spread {drift:.2e} eV/atom")
    return {"energy_error": energy_error, "force_error": force_error, "nve_spread_ev_per_atom": drift, "ms_per_md_step": 1e3 * seconds / 200}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="1536 and 12288 atoms")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="neighbour-list boxes (atoms)")
    parser.add_argument("--model-sizes", type=int, nargs="+", default=None, help="model boxes (atoms)")
    parser.add_argument("--families", nargs="+", default=None, help="default: all registered")
    parser.add_argument("--check-max-atoms", type=int, default=100_000)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (default: all)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    sizes = args.sizes or ([1536, 12288] if args.quick else [1536, 12288, 98304, 393216])
    model_sizes = args.model_sizes or ([1536] if args.quick else [1536, 12288])
    families = args.families or sorted(FAMILIES)
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    print(json.dumps(info))
    failures: List[str] = []
    results: Dict[str, object] = {"environment": info}
    if "neighbors" in args.parts:
        print("1. neighbour list, cutoff 5 A, float64")
        results["neighbors"] = bench_neighbors(sizes, device, args.check_max_atoms, failures)
    if "models" in args.parts:
        print("2. models")
        results["models"] = bench_models(families, model_sizes, device, failures)
    if "deployed" in args.parts:
        print("3. deployed file and ASE MD")
        results["deployed"] = check_deployed(device, failures)
    results["failures"] = failures
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    print("FAILED:\n  " + "\n  ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
