"""Energy + forces throughput of mlff's models against mace-torch, schnetpack and nequip, on CPU.

What is measured
----------------
Every model family of ``mlff.models`` (schnet, painn, nequip, mace, local_frame) computes the
energy and forces of periodic boxes of water (by default 192, 1 536 and 12 288 atoms) in
float32 and float64, and, side by side in the same run and at the same hyperparameters,

* ``schnet`` against schnetpack 2.1.1's ``SchNet``,
* ``painn``  against schnetpack 2.1.1's ``PaiNN``,
* ``nequip`` against nequip 0.19.1's NequIP (``nequip.model.NequIPGNNModel``),
* ``mace``   against mace-torch 0.3.16's ``MACE``.

(No peer for ``local_frame``; the issue's floor for it is relative to mlff's own MACE, which
is printed.)

One *call* is what a user pays per MD step when the neighbour list is rebuilt each time:
from an ``ase.Atoms`` to energy and forces (as a numpy array), each library through its own
input pipeline and neighbour list, as its ASE calculator does:

* mlff:        ``mlff.graph.from_atoms(atoms, cutoff, dtype)`` (mlff's compiled neighbour
  list), then ``mlff.Potential(model)(graph, compute_forces=True)``;
* mace-torch:  ``mace.data.config_from_atoms`` -> ``AtomicData.from_config`` (matscipy
  neighbour list) -> ``torch_geometric.Batch`` -> ``model(batch, compute_force=True)``
  (``MACECalculator``'s path, without stress);
* schnetpack:  ``AtomsConverter(neighbor_list=MatScipyNeighborList(cutoff))`` -> model with
  ``PairwiseDistances`` in, ``Atomwise`` + ``Forces`` out (``SpkCalculator``'s path);
* nequip:      ``NequIPCalculator.atoms_to_data`` (``nequip.data.from_ase`` ->
  ``ChemicalSpeciesToAtomTypeMapper`` -> ``NeighborListTransform``, matscipy) ->
  ``NequIPCalculator.call_model`` (the ``GraphModel``, whose ``ForceStressOutput`` returns
  energy, forces and stress from one autograd call), outputs copied to numpy as ``calculate``
  does.

The NequIP pairing. nequip's recommended deployment is ``nequip-compile`` (TorchScript or
AOTInductor) of a trained checkpoint, loaded with ``NequIPCalculator.from_compiled_model``;
here, like every other model, nequip's model is built with random weights by its model builder
(``NequIPGNNModel(seed=0, model_dtype=...)``, after nequip's ``set_global_state()``, which its
loaders call: default dtype float64, e3nn's optimisation flags at e3nn's defaults, TF32 off)
and runs eagerly in ``NequIPCalculator`` with the transforms its loaders set up. Hyperparameter
mapping (mlff ``NequIPConfig`` -> nequip): ``n_channels`` -> ``num_features``, ``l_max`` ->
``l_max``, ``parity`` -> ``parity``, ``n_interactions`` -> ``num_layers``, ``n_basis`` ->
``num_bessels``, ``envelope_exponent`` (6) -> ``polynomial_cutoff_p``, ``radial_hidden = (64,
64)`` -> ``radial_mlp_depth = 2``, ``radial_mlp_width = 64`` (both bias-free, SiLU),
``readout_hidden = 16`` -> ``readout_mlp_hidden_layers_depth = 1``,
``readout_mlp_hidden_layers_width = 16``, ``readout_mlp_nonlinearity = None`` (two bias-free
linear maps, 32 -> 16 -> 1, as mlff's), ``avg_num_neighbors`` -> ``avg_num_neighbors``,
``cutoff`` -> ``r_max``. Both last layers compute only the 32 even scalars that the readout
reads. The parameter counts differ (about 0.77 M for nequip, 0.25 M for mlff) only through the
self-connections: nequip's is a ``FullyConnectedTensorProduct`` of the node features with its
32-feature learned type embedding (32 x 32 x m weights for an output irrep of multiplicity m;
none in the first layer), mlff's a linear map per species (2 x 32 x m, in every layer). The
embedding, linear maps, radial MLPs and readout have the same 208 k parameters on both sides.
Further differences (printed as "unmatched"): nequip computes the edge geometry in float64 for
a float32 model, always returns the stress, and makes an isolated atom's energy zero by having
no first-layer self-connection, where mlff subtracts the energy of the atoms without edges.

Reported per case: the median over the clean timed calls (see "A shared machine" below) of
the whole call, of its input part ("NL+input": neighbour list and conversion) and of its model
part (forward + backward); throughput in atoms/s for the whole call and for the model part
alone; parameter counts; peak memory. Then, per pairing, mlff / peer for speed (> 1: mlff
faster; below 1 flagged "SLOWER") and for peak memory, and PASS/FAIL for the issue's floors.
All models run eager (no TorchScript, no torch.compile), with random weights and frozen
parameters (``requires_grad`` False, as MACECalculator and mlff's deployed files have them). ``--profile``
adds a torch.profiler table (self CPU time per op) of every case.

Processes and threads. Each case (implementation x family x size x dtype) runs in a fresh
process (``benchmarks/_model_worker.py``): mlff's cases with this interpreter (``.venv``),
mace-torch's and schnetpack's with the peers' environment (``.venv-peers``, made by
``benchmarks/setup_peers.sh``: mace-torch pins e3nn 0.4.4, mlff needs 0.6), nequip's with
nequip's (``.venv-nequip``, made by ``benchmarks/setup_nequip.sh``: nequip needs e3nn 0.6 and
brings its training stack; ``--nequip-python`` chooses another). A peer whose environment is
missing is not run (the script that makes it is printed). Every worker uses 2 threads
(``torch.set_num_threads(2)`` and ``OMP_NUM_THREADS=2``; ``--threads`` changes it). The mlff and peer cases of one
pairing run back to back, so that changes of the machine's load hit both alike.

Peak memory is the worker's ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the largest
resident set of that process, which includes the interpreter, torch and the model (a few
hundred MB, reported as "before" in the JSON), the neighbour list and every tensor of the
forward and backward pass. torch's CPU allocator does not cache, so this is what the case
really needs; ``tracemalloc`` would not see torch's allocations at all. "eval" memory is the
peak minus the resident set just before the first call.

Warm-up and repeats. Each worker first makes one untimed call on the 192-atom box (lazy
initialisation, e3nn code generation, allocator), then one untimed call on the case's own box
when that is cheap (predicted under a quarter of the budget), then timed calls: ``--repeats``
of them (5), and more while they add up to less than ``--min-time`` seconds (3; short calls vary
more), but none once the next one would take the time of timed calls over ``--budget`` seconds
(120; at least one call). Cases run in order of size; a case is skipped, with the
reason printed, when the same implementation's fastest call at the next smaller size predicts
(linearly in atoms: the number of edges per atom is the same) that one call would exceed the
budget, or (peers only: mlff's convolutions are chunked for large systems, so its memory grows
more slowly than linearly) that its peak memory would exceed the memory limit (85% of the
memory available at start). A watchdog also kills a worker whose resident memory crosses the limit, that leaves
the machine less than 1 GB of available memory, or that runs far past its time.

A shared machine. Two threads slow down many-fold (10x and more was seen here) when another
process takes one of the two CPUs, so a call is only "clean" when other processes used less
than ``--quiet-threshold`` (10%) of the machine's CPU time during it (from /proc/stat, minus
the worker's own CPU time). Before the first timed call, and after a disturbed one, the
worker waits for such a quiet moment; the time lost to others (waiting, and calls they
disturbed) is bounded by ``--max-wait`` per case. Medians are taken over the clean calls; a
case with none is marked ``*`` and its ratios "unreliable". Even clean, calls of the 192-atom
box (tens of ms) vary by +-20% from run to run here: compare at 1.5k atoms and up.

Usage::

    .venv/bin/python benchmarks/models.py                 # full run (an hour or more)
    .venv/bin/python benchmarks/models.py --quick         # 192 atoms, float32 (about 2 min on a quiet machine)
    .venv/bin/python benchmarks/models.py --sizes 1536 --dtypes float64 --models mace
    .venv/bin/python benchmarks/models.py --sizes 1536 --models nequip   # mlff vs nequip, f32 and f64
    .venv/bin/python benchmarks/models.py --json benchmarks/results/models.json
    .venv/bin/python benchmarks/models.py --quick --models mace --profile --profile-calls 20
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "_model_worker.py"
DEFAULT_PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
DEFAULT_NEQUIP_PYTHON = ROOT / ".venv-nequip" / "bin" / "python"
# which environment runs each peer backend, and the script that makes it
PEER_ENVIRONMENTS = {
    "mace": ("peers", "benchmarks/setup_peers.sh"),
    "schnetpack": ("peers", "benchmarks/setup_peers.sh"),
    "nequip": ("nequip", "benchmarks/setup_nequip.sh"),
}

THREADS = 2
CUTOFF = 5.0  # Angstrom
SPECIES = (1, 8)  # H, O: every model is built for the two elements of water
AVG_NUM_NEIGHBORS = 50.0  # normalisation constant of MACE and NequIP; ~52 edges/atom here

DEFAULT_SIZES = [192, 1536, 12288]  # 3 x (4^3, 8^3, 16^3) molecules
DEFAULT_DTYPES = ["float32", "float64"]
WARMUP_ATOMS = 192
MIN_FREE_GB = 1.0  # the watchdog stops a case when the machine's available memory falls below

# Floors from the issue (printed as PASS/FAIL; the exit status is always 0).
FLOOR_MACE_SPEED = 1.5  # mlff MACE / mace-torch MACE throughput at 1.5k atoms, f32 and f64
FLOOR_MACE_MEMORY = 0.5  # mlff MACE / mace-torch MACE peak memory at 1.5k atoms
FLOOR_SCHNETPACK_SPEED = 1.2  # mlff SchNet, PaiNN / schnetpack's
FLOOR_NEQUIP_SPEED = 1.2  # mlff NequIP / nequip's NequIP
FLOOR_LOCAL_FRAME_SPEED = 2.0  # mlff local_frame / mlff MACE throughput
FLOOR_SIZE = 1536


# --------------------------------------------------------------------------------------------
# Model families, their hyperparameters and peers
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: the benchmark's hyperparameters (mlff config names) and its peer."""

    name: str
    hyper: Dict[str, object]
    peer_backend: Optional[str] = None  # "mace", "schnetpack" (.venv-peers) or "nequip" (.venv-nequip)
    peer_label: str = ""
    peer_call: str = ""  # how the peer is built, for the printout
    unmatched: Tuple[str, ...] = ()  # differences that cannot be matched


FAMILIES: Dict[str, Family] = {
    "schnet": Family(
        "schnet",
        dict(cutoff=CUTOFF, n_features=128, n_filters=128, n_interactions=3, n_basis=50),
        "schnetpack",
        "schnetpack SchNet",
        "spk.representation.SchNet(n_atom_basis=128, n_interactions=3, n_filters=128, "
        "radial_basis=GaussianRBF(n_rbf=50, cutoff=5.0), cutoff_fn=CosineCutoff(5.0)); "
        "readout Atomwise(n_in=128) (128 -> 64 -> 1, ssp); Forces",
        (
            "cutoff function: mlff multiplies filters by a polynomial envelope (p = 6), "
            "schnetpack by CosineCutoff (it has no polynomial one); same cost",
            "schnetpack's embedding has 100 rows (elements up to Z = 100), mlff's 2 (H, O): "
            "12.7k more parameters, no extra work",
            "mlff's atom-wise update after the convolution has no biases (isolated atom -> 0)",
        ),
    ),
    "painn": Family(
        "painn",
        dict(cutoff=CUTOFF, n_features=128, n_interactions=3, n_basis=20),
        "schnetpack",
        "schnetpack PaiNN",
        "spk.representation.PaiNN(n_atom_basis=128, n_interactions=3, "
        "radial_basis=BesselRBF(n_rbf=20, cutoff=5.0), cutoff_fn=CosineCutoff(5.0)); "
        "readout Atomwise(n_in=128) (128 -> 64 -> 1, silu); Forces",
        (
            "cutoff function: polynomial envelope (p = 6) in mlff, CosineCutoff in schnetpack",
            "schnetpack's embedding has 100 rows, mlff's 2",
            "mlff also runs each layer's update block on the atom-alone state (so an isolated "
            "atom has exactly zero energy): one extra per-atom MLP per layer",
            "schnetpack computes the filters of all layers in one Dense (20 -> 3 x 3 x 128); "
            "mlff one Linear (20 -> 3 x 128) per layer: same arithmetic",
        ),
    ),
    "mace": Family(
        "mace",
        dict(
            cutoff=CUTOFF,
            n_channels=64,
            hidden_l_max=1,
            l_max=3,
            correlation=3,
            n_interactions=2,
            n_basis=8,
            envelope_exponent=5,
            radial_hidden=[64, 64, 64],
            readout_hidden=16,
            avg_num_neighbors=AVG_NUM_NEIGHBORS,
        ),
        "mace",
        "mace-torch MACE",
        "mace.modules.MACE(r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, "
        "hidden_irreps='64x0e+64x1o', correlation=3, num_interactions=2, radial_MLP=[64,64,64], "
        "MLP_irreps='16x0e', interaction_cls_first=RealAgnosticInteractionBlock, "
        "interaction_cls=RealAgnosticResidualInteractionBlock, gate=silu, avg_num_neighbors=50, "
        "atomic_numbers=[1,8], atomic_energies=0; other arguments at their defaults "
        "(use_reduced_cg=True)",
        (
            "the symmetric contractions' bases (their generalized Clebsch-Gordan coefficients, "
            "mace-torch's reduced set) are each library's own; weight counts may differ",
        ),
    ),
    "nequip": Family(
        "nequip",
        dict(
            cutoff=CUTOFF,
            n_channels=32,
            l_max=2,
            parity=True,
            n_interactions=4,
            n_basis=8,
            radial_hidden=[64, 64],
            readout_hidden=16,
            avg_num_neighbors=AVG_NUM_NEIGHBORS,
        ),
        "nequip",
        "nequip NequIP",
        "nequip.model.NequIPGNNModel(r_max=5.0, type_names=['H','O'], num_layers=4, l_max=2, "
        "parity=True, num_features=32, radial_mlp_depth=2, radial_mlp_width=64, num_bessels=8, "
        "polynomial_cutoff_p=6, avg_num_neighbors=50, readout_mlp_hidden_layers_depth=1, "
        "readout_mlp_hidden_layers_width=16, readout_mlp_nonlinearity=None, seed=0, model_dtype=<dtype>); "
        "other arguments at their defaults (type_embed_num_features=32, no energy scale or shift); "
        "in NequIPCalculator (from_ase, matscipy neighbour list), eager",
        (
            "self-connections: nequip's is a FullyConnectedTensorProduct of the features with the "
            "32-feature learned type embedding (32 x 32 x m weights per output irrep of multiplicity "
            "m), mlff's a linear map per species (2 x 32 x m): 557k against 41k parameters, the whole "
            "difference in the counts (everything else, 208k, is the same on both sides); nequip's "
            "also costs more per atom",
            "nequip's first layer has no self-connection (its way to make an isolated atom's energy "
            "zero); mlff's has one and instead subtracts the energy of the atoms without edges (one "
            "more pass of the atom-wise parts)",
            "nequip computes the edge geometry (vectors, lengths, Bessel basis, spherical harmonics) in "
            "float64 even for a float32 model, then casts; mlff stays in the model dtype",
            "nequip's model always returns the virial and stress too (same autograd call, with "
            "respect to a cell displacement); mlff's is called with compute_stress=False",
            "Bessel basis: the same functions sin(n pi r / c) / r, prefactor 2/c in nequip and "
            "sqrt(2/c) in mlff (no effect on cost)",
        ),
    ),
    "local_frame": Family(
        "local_frame",
        dict(cutoff=CUTOFF, n_features=256, n_interactions=6, n_basis=32),
    ),
}


# --------------------------------------------------------------------------------------------
# Water boxes
# --------------------------------------------------------------------------------------------


def water_box(n_atoms: int, seed: int = 0):
    """A periodic cubic box of rigid water molecules at 1 g/cm^3, deterministic in ``seed``.

    ``ase.build.molecule("H2O")`` is placed, centred on its centre of mass and turned by a
    uniformly random rotation, on every site of a simple cubic lattice of m^3 sites
    (m = round((n_atoms / 3)^(1/3))), with the lattice spacing that gives 1 g/cm^3 (3.10 A).
    Returns an ``ase.Atoms`` of 3 m^3 atoms.
    """
    import ase
    import ase.build
    import ase.units
    from scipy.spatial.transform import Rotation

    per_side = max(1, int(round((n_atoms / 3) ** (1.0 / 3.0))))
    water = ase.build.molecule("H2O")
    molecule = water.get_positions() - water.get_center_of_mass()  # [3, 3] A
    mass_g = water.get_masses().sum() * ase.units._amu * 1e3  # g per molecule
    spacing = (mass_g / 1.0 * 1e24) ** (1.0 / 3.0)  # A: (cm^3 per molecule at 1 g/cm^3 -> A^3)^(1/3)
    grid = np.stack(np.meshgrid(*(np.arange(per_side),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    centres = (grid + 0.5) * spacing  # [n_mol, 3]
    rotations = Rotation.random(len(centres), random_state=seed).as_matrix()  # [n_mol, 3, 3]
    positions = centres[:, None, :] + np.einsum("mij,aj->mai", rotations, molecule)  # [n_mol, 3, 3]
    length = per_side * spacing
    atoms = ase.Atoms(
        numbers=np.tile(water.get_atomic_numbers(), len(centres)),
        positions=positions.reshape(-1, 3),
        cell=np.eye(3) * length,
        pbc=True,
    )
    atoms.wrap()
    return atoms


def save_structure(atoms, path: Path) -> None:
    np.savez(
        path,
        positions=atoms.get_positions(),
        numbers=atoms.get_atomic_numbers(),
        cell=np.asarray(atoms.get_cell()),
        pbc=np.asarray(atoms.get_pbc()),
    )


# --------------------------------------------------------------------------------------------
# Running one case
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    n_atoms: int
    dtype: str
    family: str
    impl: str  # "mlff" or the peer backend
    label: str  # "mlff" or e.g. "mace-torch MACE"
    result: dict = dataclasses.field(default_factory=dict)
    skipped: str = ""  # reason, when not run
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok"))

    @property
    def atoms_per_s(self) -> float:
        return self.n_atoms / self.result["median_total_s"] if self.ok else float("nan")

    @property
    def model_atoms_per_s(self) -> float:
        return self.n_atoms / self.result["median_model_s"] if self.ok else float("nan")

    @property
    def peak_gb(self) -> float:
        return self.result["peak_rss_mb"] / 1e3 if self.ok else float("nan")


def memory_available_gb() -> float:
    with open("/proc/meminfo") as file:
        for line in file:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1e6
    return float("nan")


def process_rss_gb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return 0.0


def run_worker(
    python: str, spec: dict, workdir: Path, memory_limit_gb: float, timeout_s: float
) -> Tuple[dict, float]:
    """Run one worker process under a memory and time watchdog; returns (result, wall seconds)."""
    tag = f"{spec['backend']}-{spec['family']}-{spec['n_atoms']}-{spec['dtype']}"
    spec_path = workdir / f"{tag}.json"
    out_path = workdir / f"{tag}.out.json"
    log_path = workdir / f"{tag}.log"
    spec = dict(spec, output=str(out_path))
    spec_path.write_text(json.dumps(spec))
    if out_path.exists():
        out_path.unlink()
    env = dict(os.environ)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[variable] = str(spec["threads"])
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    killed = ""
    peak_seen = 0.0
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [python, str(WORKER), str(spec_path)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT)
        )
        while process.poll() is None:
            time.sleep(0.2)
            rss = process_rss_gb(process.pid)
            peak_seen = max(peak_seen, rss)
            if rss > memory_limit_gb:
                killed = (f"killed by the watchdog: resident memory {rss:.1f} GB crossed the limit "
                          f"{memory_limit_gb:.1f} GB")
            elif memory_available_gb() < MIN_FREE_GB:
                # the machine is shared: never let a case push other processes into the OOM killer
                killed = (f"killed by the watchdog at {rss:.1f} GB resident: less than {MIN_FREE_GB:.0f} GB "
                          "of the machine's memory left")
            elif time.perf_counter() - start > timeout_s:
                killed = f"killed by the watchdog after {timeout_s:.0f} s"
            if killed:
                process.kill()
                process.wait()
                break
    wall = time.perf_counter() - start
    if killed:
        return {"ok": False, "error": killed, "killed": True, "peak_rss_mb": peak_seen * 1e3}, wall
    if not out_path.exists():
        tail = log_path.read_text()[-2000:]
        return {"ok": False, "error": f"worker exited with status {process.returncode} and no result:\n{tail}"}, wall
    return json.loads(out_path.read_text()), wall


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def print_table(headers: List[str], rows: List[List[str]], right: Optional[List[bool]] = None) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    right = right or [True] * len(headers)

    def line(cells: List[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_hyperparameters(families: List[str], cases: List[Case]) -> None:
    print("\n== Hyperparameters (all models: cutoff 5.0 A, species H and O, random weights) ==")
    for name in families:
        family = FAMILIES[name]
        mine = next((c for c in cases if c.family == name and c.impl == "mlff" and c.ok), None)
        config = mine.result.get("config") if mine else None
        params = f"{mine.result['n_parameters']:,} parameters" if mine else "parameters: not run"
        print(f"\n{name}")
        if config:
            print(f"  mlff: {config}")
        else:
            arguments = ", ".join(f"{k}={v}" for k, v in family.hyper.items())
            print(f"  mlff: mlff.models.build({name!r}, species=(1, 8), {arguments})")
        print(f"        {params}")
        if family.peer_backend:
            peer = next((c for c in cases if c.family == name and c.impl != "mlff" and c.ok), None)
            peer_params = f"{peer.result['n_parameters']:,} parameters" if peer else "parameters: not run"
            versions = ""
            if peer:
                versions = ", ".join(f"{k} {v}" for k, v in sorted(peer.result.get("versions", {}).items()))
                versions = f" ({versions})"
            print(f"  peer: {family.peer_call}{versions}")
            if peer and peer.result.get("config"):
                print(f"        as built: {peer.result['config']}")
            print(f"        {peer_params}")
            for note in family.unmatched:
                print(f"  unmatched: {note}")
        else:
            print("  peer: none in this benchmark")


def print_results(cases: List[Case]) -> None:
    print("\n== Energy + forces, one process per case, eager ==")
    print("   atoms/s = atoms / (NL+input + model); model-only = atoms / model part; peak = ru_maxrss of the worker")
    print("   calls = undisturbed / timed calls (medians over the undisturbed ones; * = all disturbed by other processes)")
    headers = ["atoms", "dtype", "model", "impl", "params", "edges", "calls", "NL+input ms", "model ms",
               "atoms/s", "model-only atoms/s", "peak GB", "eval GB"]
    rows = []
    for c in cases:
        base = [str(c.n_atoms), c.dtype, c.family, c.label]
        if c.ok:
            r = c.result
            rows.append(base + [
                fmt(r["n_parameters"]), fmt(r["n_edges"]),
                f"{r['n_clean']}/{len(r['all_calls'])}" + ("*" if r["disturbed"] else ""),
                fmt(1e3 * r["median_prepare_s"], 1), fmt(1e3 * r["median_model_s"], 1),
                fmt(c.atoms_per_s), fmt(c.model_atoms_per_s), fmt(c.peak_gb, 2),
                fmt(r["eval_rss_mb"] / 1e3, 2),
            ])
        else:
            reason = c.skipped or c.result.get("error", "failed").splitlines()[0]
            rows.append(base + [f"SKIPPED: {reason}" if c.skipped else f"FAILED: {reason}"] + [""] * 8)
    right = [True, False, False, False] + [True] * 9
    # a skip reason is long: print those rows unaligned after the table
    ok_rows = [r for r in rows if not r[4].startswith(("SKIPPED", "FAILED"))]
    print_table(headers, ok_rows, right)
    for r in rows:
        if r[4].startswith(("SKIPPED", "FAILED")):
            print(f"{r[0]:>6}  {r[1]:<7}  {r[2]:<11}  {r[3]:<17}  {r[4]}")


def find(cases: List[Case], impl: str, family: str, n_atoms: int, dtype: str) -> Optional[Case]:
    """The case of ``impl`` ("mlff" or a peer backend) for that family, size and dtype, if any."""
    return next((c for c in cases if (c.impl, c.family, c.n_atoms, c.dtype) == (impl, family, n_atoms, dtype)), None)


def pairings(cases: List[Case]) -> List[Tuple[Case, Case]]:
    """(mlff case, peer case) of every pairing where both ran."""
    out = []
    for c in cases:
        if c.impl == "mlff" or not c.ok:
            continue
        mine = find(cases, "mlff", c.family, c.n_atoms, c.dtype)
        if mine is not None and mine.ok:
            out.append((mine, c))
    return out


def print_ratios(cases: List[Case]) -> None:
    print("\n== mlff / peer (speed: > 1 means mlff is faster; memory: < 1 means mlff needs less) ==")
    headers = ["atoms", "dtype", "model", "peer", "speed total", "speed model-only", "peak memory", "verdict"]
    rows = []
    for mine, peer in pairings(cases):
        speed = mine.atoms_per_s / peer.atoms_per_s
        speed_model = mine.model_atoms_per_s / peer.model_atoms_per_s
        memory = mine.peak_gb / peer.peak_gb
        if speed >= 1.0:
            verdict = "mlff faster"
        elif speed >= 0.95:
            verdict = "<<< mlff SLOWER than peer (by less than 5%)"
        else:
            verdict = "<<< mlff SLOWER than peer"
        if mine.result["disturbed"] or peer.result["disturbed"]:
            verdict += " (unreliable: all calls of a side disturbed by other processes)"
        rows.append([str(mine.n_atoms), mine.dtype, mine.family, peer.label,
                     f"{speed:.2f}x", f"{speed_model:.2f}x", f"{memory:.2f}x", verdict])
    # runs of mlff only, where the peer was skipped or failed
    for c in cases:
        if c.impl != "mlff" and not c.ok:
            mine = find(cases, "mlff", c.family, c.n_atoms, c.dtype)
            status = "ran" if mine is not None and mine.ok else "did not run"
            reason = c.skipped or c.result.get("error", "failed").splitlines()[0]
            rows.append([str(c.n_atoms), c.dtype, c.family, c.label, "-", "-", "-",
                         f"peer did not run ({reason}); mlff {status}"])
    if rows:
        print_table(headers, rows, [True, False, False, False, True, True, True, False])
    else:
        print("(no pairing ran)")

    # mlff local_frame against mlff MACE
    print("\n== mlff local_frame / mlff mace (throughput) ==")
    rows = []
    for c in cases:
        if c.impl == "mlff" and c.family == "local_frame" and c.ok:
            mace = find(cases, "mlff", "mace", c.n_atoms, c.dtype)
            if mace is not None and mace.ok:
                rows.append([str(c.n_atoms), c.dtype, f"{c.atoms_per_s / mace.atoms_per_s:.2f}x"])
    if rows:
        print_table(["atoms", "dtype", "local_frame / mace"], rows, [True, False, True])
    else:
        print("(needs both local_frame and mace)")


def check_floors(cases: List[Case]) -> List[Tuple[str, Optional[bool], str]]:
    """(description, passed or None when not measured, detail) for each floor of the issue."""
    floors = []

    def get(impl, family, n_atoms, dtype) -> Optional[Case]:
        c = find(cases, impl, family, n_atoms, dtype)
        return c if c is not None and c.ok else None

    sizes = sorted({c.n_atoms for c in cases})
    floor_size = min(sizes, key=lambda n: abs(n - FLOOR_SIZE)) if sizes else FLOOR_SIZE
    for dtype in DEFAULT_DTYPES:
        mine, peer = get("mlff", "mace", floor_size, dtype), get("mace", "mace", floor_size, dtype)
        name = f"mace {dtype} at {floor_size} atoms: >= {FLOOR_MACE_SPEED}x mace-torch speed"
        if mine and peer:
            ratio = mine.atoms_per_s / peer.atoms_per_s
            floors.append((name, ratio >= FLOOR_MACE_SPEED, f"{ratio:.2f}x"))
            ratio = mine.peak_gb / peer.peak_gb
            floors.append((f"mace {dtype} at {floor_size} atoms: <= {FLOOR_MACE_MEMORY}x mace-torch peak memory",
                           ratio <= FLOOR_MACE_MEMORY, f"{ratio:.2f}x ({mine.peak_gb:.2f} vs {peer.peak_gb:.2f} GB)"))
        else:
            floors.append((name, None, "not measured"))
        for family, backend, floor in (("schnet", "schnetpack", FLOOR_SCHNETPACK_SPEED),
                                       ("painn", "schnetpack", FLOOR_SCHNETPACK_SPEED),
                                       ("nequip", "nequip", FLOOR_NEQUIP_SPEED)):
            mine, peer = get("mlff", family, floor_size, dtype), get(backend, family, floor_size, dtype)
            name = f"{family} {dtype} at {floor_size} atoms: >= {floor}x {backend} speed"
            if mine and peer:
                ratio = mine.atoms_per_s / peer.atoms_per_s
                floors.append((name, ratio >= floor, f"{ratio:.2f}x"))
            else:
                floors.append((name, None, "not measured"))
        mine, mace = get("mlff", "local_frame", floor_size, dtype), get("mlff", "mace", floor_size, dtype)
        name = f"local_frame {dtype} at {floor_size} atoms: >= {FLOOR_LOCAL_FRAME_SPEED}x mlff mace speed"
        if mine and mace:
            ratio = mine.atoms_per_s / mace.atoms_per_s
            floors.append((name, ratio >= FLOOR_LOCAL_FRAME_SPEED, f"{ratio:.2f}x"))
        else:
            floors.append((name, None, "not measured"))
    largest = max(sizes) if sizes else 0
    if largest >= 10000:
        for dtype in DEFAULT_DTYPES:
            c = find(cases, "mlff", "mace", largest, dtype)
            name = f"mace {dtype} runs at {largest} atoms"
            if c is None:
                floors.append((name, None, "not measured"))
            elif c.ok:
                floors.append((name, True, f"{c.peak_gb:.1f} GB peak"))
            else:
                floors.append((name, False, (c.skipped or c.result.get("error", "failed")).splitlines()[0]))
    return floors


def print_floors(floors, cases: List[Case]) -> None:
    print("\n== Floors of the issue (informational; exit status is always 0) ==")
    if FLOOR_SIZE not in {c.n_atoms for c in cases}:
        print(f"   (the issue sets them at {FLOOR_SIZE} atoms; this run checks them at the closest size it ran)")
    for name, passed, detail in floors:
        status = "PASS" if passed else ("FAIL" if passed is not None else "n/a ")
        print(f"  {status}  {name}: {detail}")


# --------------------------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="192 atoms, float32, 3 timed calls or 1 s of them (about 1 minute on a quiet machine)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help=f"atoms per box (default {DEFAULT_SIZES}); rounded to 3 m^3")
    parser.add_argument("--models", nargs="+", default=None, help="mlff families (default: all registered)")
    parser.add_argument("--dtypes", nargs="+", choices=DEFAULT_DTYPES, default=None)
    parser.add_argument("--no-peers", action="store_true", help="mlff's models only")
    parser.add_argument("--peers-python", default=str(DEFAULT_PEERS_PYTHON),
                        help="interpreter of the peers' environment (mace-torch, schnetpack)")
    parser.add_argument("--nequip-python", default=str(DEFAULT_NEQUIP_PYTHON),
                        help="interpreter of nequip's environment")
    parser.add_argument("--repeats", type=int, default=None, help="most timed calls per case (default 5; --quick 3)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="more timed calls than --repeats while their total is under this many seconds "
                             "(default 3; --quick 1)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed calls per case (default 120; --quick 15)")
    parser.add_argument("--memory-limit-gb", type=float, default=None, help="default: 85%% of the memory available at start")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per process (default 2)")
    parser.add_argument("--quiet-threshold", type=float, default=0.1,
                        help="a timed call during which other processes used more than this fraction of the "
                             "machine's CPUs counts as disturbed (default 0.1)")
    parser.add_argument("--max-wait", type=float, default=None,
                        help="seconds per case that may be lost to other processes: waiting for them to leave "
                             "the CPUs idle, and calls they disturbed (default 900; --quick 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the molecules' orientations")
    parser.add_argument("--profile", action="store_true",
                        help="also print a torch.profiler table (self CPU time per op) of every case")
    parser.add_argument("--profile-rows", type=int, default=25, help="rows of each profile table")
    parser.add_argument("--profile-calls", type=int, default=1, help="calls summed in each profile table")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write every result to PATH")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [WARMUP_ATOMS] if args.quick else DEFAULT_SIZES
    if args.dtypes is None:
        args.dtypes = ["float32"] if args.quick else DEFAULT_DTYPES
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.budget is None:
        args.budget = 15.0 if args.quick else 120.0
    if args.min_time is None:
        args.min_time = 1.0 if args.quick else 3.0
    if args.max_wait is None:
        args.max_wait = 10.0 if args.quick else 900.0
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    registered = available_models()
    models = args.models or [name for name in ("schnet", "painn", "nequip", "mace", "local_frame") if name in registered]
    unknown = [m for m in models if m not in FAMILIES]
    if unknown:
        print(f"models.py: no benchmark settings for {unknown}; known: {sorted(FAMILIES)}", file=sys.stderr)
        return 2
    missing = [m for m in models if m not in registered]
    interpreters = peer_interpreters(args, models)
    memory_limit = args.memory_limit_gb or 0.85 * memory_available_gb()

    print("mlff model benchmark: energy + forces on periodic water boxes")
    print(f"  host {platform.node()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; memory limit per case {memory_limit:.1f} GB")
    print(f"  {args.threads} threads per process; per case {args.repeats} timed calls or more for at least "
          f"{args.min_time:.0f} s, at most {args.budget:.0f} s")
    print(f"  mlff: {sys.executable}")
    for environment, python in sorted(set(interpreters.values())):
        backends = ", ".join(sorted(b for b, v in interpreters.items() if v[0] == environment))
        print(f"  {environment}: {python} ({backends})")
    for name in missing:
        print(f"  [models] {name!r} is not registered in mlff.models: skipped")
    models = [m for m in models if m in registered]

    with tempfile.TemporaryDirectory(prefix="mlff-bench-") as tmp:
        workdir = Path(tmp)
        sizes = sorted(set(args.sizes))
        structures = {}
        for n in sorted(set(sizes) | {WARMUP_ATOMS}):
            atoms = water_box(n, args.seed)
            path = workdir / f"water-{len(atoms)}.npz"
            save_structure(atoms, path)
            structures[n] = (len(atoms), path)
        paths = {n_atoms: path for n_atoms, path in structures.values()}
        print("  water boxes: " + ", ".join(f"{structures[n][0]} atoms" for n in sizes)
              + f" (1 g/cm^3, seed {args.seed}); warm-up on {structures[WARMUP_ATOMS][0]} atoms")

        plan: List[Case] = []
        for n in sizes:
            for dtype in args.dtypes:
                for family in models:
                    plan.append(Case(structures[n][0], dtype, family, "mlff", "mlff"))
                    spec = FAMILIES[family]
                    if spec.peer_backend in interpreters:
                        plan.append(Case(structures[n][0], dtype, family, spec.peer_backend, spec.peer_label))

        print(f"\n[models] {len(plan)} cases")
        done: List[Case] = []
        for index, case in enumerate(plan, 1):
            prediction = predict(case, done)
            skip = ""
            warmup = 1
            if prediction is not None:
                call_s, peak_gb, from_atoms = prediction
                # mlff's own cases are not skipped on memory: its equivariant convolutions work
                # through large systems' edges in chunks (mlff.nn.equivariant.convolution), so the
                # linear prediction overestimates them; the watchdog still stops a case at the limit
                if peak_gb > 1.1 * memory_limit and case.impl != "mlff":
                    skip = (f"predicted peak memory ~{peak_gb:.0f} GB (from {from_atoms} atoms) "
                            f"> limit {memory_limit:.1f} GB")
                elif call_s > args.budget:
                    skip = f"one call predicted to take ~{call_s:.0f} s (from {from_atoms} atoms) > budget {args.budget:.0f} s"
                warmup = 1 if call_s <= args.budget / 4 else 0
            if skip:
                case.skipped = skip
                print(f"[{index:3d}/{len(plan)}] {case.n_atoms:6d} {case.dtype} {case.family:<11} {case.label:<17} "
                      f"SKIPPED: {skip}", flush=True)
                done.append(case)
                continue
            spec = {
                "backend": case.impl,
                "family": case.family,
                "hyper": dict(FAMILIES[case.family].hyper, species=list(SPECIES)),
                "dtype": case.dtype,
                "threads": args.threads,
                "quiet_threshold": args.quiet_threshold,
                "max_wait_s": args.max_wait,
                "n_atoms": case.n_atoms,
                "structure": str(paths[case.n_atoms]),
                "warmup_structure": str(structures[WARMUP_ATOMS][1]),
                "warmup": warmup,
                "repeats": args.repeats,
                "min_time_s": args.min_time,
                "budget_s": args.budget,
                "profile": args.profile,
                "profile_rows": args.profile_rows,
                "profile_calls": args.profile_calls,
            }
            python = sys.executable if case.impl == "mlff" else interpreters[case.impl][1]
            timeout = 300.0 + 3.0 * args.budget + args.max_wait
            if prediction is not None:
                timeout = max(timeout, 120.0 + args.max_wait + 3.0 * prediction[0] * (warmup + 1))
            case.result, case.wall_s = run_worker(python, spec, workdir, memory_limit, timeout)
            done.append(case)
            if case.ok:
                r = case.result
                note = "" if r.get("forces_finite", True) else "  NON-FINITE FORCES"
                if r["disturbed"]:
                    note += "  (every call disturbed by other processes)"
                print(f"[{index:3d}/{len(plan)}] {case.n_atoms:6d} {case.dtype} {case.family:<11} {case.label:<17} "
                      f"{case.atoms_per_s:9.0f} atoms/s  (model only {case.model_atoms_per_s:9.0f})  "
                      f"peak {case.peak_gb:5.2f} GB  {r['n_clean']}/{len(r['all_calls'])} clean calls  "
                      f"waited {r['waited_s']:4.0f} s  {case.wall_s:5.0f} s wall{note}", flush=True)
            else:
                print(f"[{index:3d}/{len(plan)}] {case.n_atoms:6d} {case.dtype} {case.family:<11} {case.label:<17} "
                      f"FAILED: {case.result.get('error', '?')}", flush=True)
                if case.result.get("traceback"):
                    print(case.result["traceback"], flush=True)

    print_hyperparameters(models, done)
    print_results(done)
    print_ratios(done)
    floors = check_floors(done)
    print_floors(floors, done)
    print(f"\n  load average at the end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"({os.cpu_count()} CPUs)")

    if args.profile:
        for c in done:
            if c.ok and "profile" in c.result:
                p = c.result["profile"]
                print(f"\n== torch.profiler: {c.n_atoms} atoms {c.dtype} {c.family} {c.label}: {p.get('calls', 1)} call(s) "
                      f"(model part {1e3 * c.result['median_model_s']:.0f} ms; forward alone, no grad: "
                      f"{1e3 * p['forward_only_s']:.0f} ms) ==")
                print(p["table"])

    if args.json:
        payload = {
            "meta": {
                "host": platform.node(),
                "cpus": os.cpu_count(),
                "threads": args.threads,
                "quiet_threshold": args.quiet_threshold,
                "max_wait_s": args.max_wait,
                "budget_s": args.budget,
                "repeats": args.repeats,
                "memory_limit_gb": memory_limit,
                "seed": args.seed,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            "hyperparameters": {name: dataclasses.asdict(FAMILIES[name]) for name in models},
            "cases": [dataclasses.asdict(c) for c in done],
            "floors": [{"floor": n, "passed": p, "detail": d} for n, p, d in floors],
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"\n[models] results written to {args.json}")
    return 0


def predict(case: Case, done: List[Case]) -> Optional[Tuple[float, float, int]]:
    """(seconds per call, peak GB, from which size) from the same implementation's largest
    smaller run, scaled linearly in atoms; None without one."""
    previous = [c for c in done if (c.impl, c.family, c.dtype) == (case.impl, case.family, case.dtype)
                and c.ok and c.n_atoms < case.n_atoms]
    if not previous:
        return None
    p = max(previous, key=lambda c: c.n_atoms)
    scale = case.n_atoms / p.n_atoms
    r = p.result
    call_s = r["best_total_s"] * scale
    peak_gb = (r["rss_before_mb"] + max(r["eval_rss_mb"], 0.0) * scale) / 1e3
    return call_s, peak_gb, p.n_atoms


def peer_interpreters(args: argparse.Namespace, models: List[str]) -> Dict[str, Tuple[str, str]]:
    """{peer backend: (environment name, interpreter path)} for the peers of ``models`` whose
    environment exists (none with ``--no-peers``); missing environments are printed with the
    script that makes them, and their peers are not run."""
    if args.no_peers:
        return {}
    pythons = {"peers": args.peers_python, "nequip": args.nequip_python}
    found: Dict[str, Tuple[str, str]] = {}
    missing: Dict[Tuple[str, str, str], List[str]] = {}
    for backend in sorted({FAMILIES[m].peer_backend for m in models} - {None}):
        environment, script = PEER_ENVIRONMENTS[backend]
        python = pythons[environment]
        if Path(python).exists():
            found[backend] = (environment, python)
        else:
            missing.setdefault((environment, python, script), []).append(backend)
    for (environment, python, script), backends in missing.items():
        print(f"[models] no {environment} environment at {python}: run `bash {script}` "
              f"({', '.join(backends)} not run)")
    return found


def available_models() -> List[str]:
    """Families registered in mlff.models (imports mlff; retried while someone edits it)."""
    last_error = None
    for _ in range(5):
        try:
            import mlff.models

            return list(mlff.models.available())
        except Exception as error:  # a half-edited module: wait and retry
            last_error = error
            for name in [m for m in sys.modules if m == "mlff" or m.startswith("mlff.")]:
                del sys.modules[name]
            time.sleep(10)
    raise RuntimeError(f"cannot import mlff.models: {last_error}")


if __name__ == "__main__":
    sys.exit(main())
