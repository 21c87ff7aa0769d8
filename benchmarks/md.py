"""MD step cost of mlff's engines against a bare evaluation and against mace-torch, on CPU.

What is measured
----------------
One randomly initialised mlff MACE potential (``mlff.Potential`` with E0 and a scale, deployed
with ``mlff.export.deploy``) runs molecular dynamics (velocity Verlet, NVE, time step
``--timestep`` fs, 300 K Maxwell-Boltzmann start, fixed seed) on

* ethanol (9 atoms, no cell),
* periodic boxes of liquid water of 192 and 1 536 atoms (``benchmarks/models.py::water_box``),

through each route a user has:

``bare``
    the deployed TorchScript module alone: ``module(positions, numbers, cell, pbc, edge_index,
    cell_shifts)`` on fixed positions with a neighbour list built once beforehand (energy and
    forces, nothing else). This is the floor every engine is compared with.
``ase``
    ``mlff.MLFFCalculator`` driven by ``ase.md.verlet.VelocityVerlet``.
``torchforce``
    openmm-torch ``TorchForce`` from ``mlff.engines.openmm.create_force(backend="torch")`` in a
    System integrated by ``openmm.VerletIntegrator`` on OpenMM's CPU platform (1 thread).
``pythonforce``
    the same with ``openmm.PythonForce`` (``backend="python"``).
``mace-torch``
    mace-torch 0.3.16's ``MACECalculator`` driven by the same ASE ``VelocityVerlet``, with a
    ``ScaleShiftMACE`` of the same hyperparameters, E0 and scale (random weights too), in the
    peers' environment (``.venv-peers``, see ``benchmarks/setup_peers.sh``): a persistent
    worker process that this script drives step block by step block.

Everything runs on one thread (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``, OpenMM CPU
``Threads=1``) in float32 unless ``--dtype float64``.

How it is timed
---------------
Each route first makes warm-up steps (TorchScript's first calls, e3nn code generation; at least
15 for TorchForce, whose TorchScript profiling executor re-optimises the graph for each of the
first dozen edge counts), then its step count per block is set so that one block takes about
``--block`` CPU seconds. Then, for ``--rounds`` rounds, every route runs one block, back to back, in
an order rotated from round to round; a route's trajectory continues from block to block.

Two clocks: the CPU time of the process that runs the route (``time.process_time``: this one
for mlff's routes, the worker for mace-torch's; all threads, user and system) and wall time. On
a machine shared with other work (here 2 cores and trainings at higher priority) a 1-thread
step waits for a CPU for a varying part, at times 95%, of its wall time, while its CPU time is
what the step costs: CPU time is the primary
measure, wall time is printed beside it. ms/step of a route is the median over rounds of
(block time / steps); each ratio (route / bare, ase / mace-torch) is computed *within* a round,
from blocks run seconds apart, and its median and min..max over rounds are printed: the min..max
spread is the noise. The ASE routes' temperatures after the rounds are logged: a trajectory that
blew up would change the cost of a step. ns/day = time step / (CPU ms/step): what one free core would give.

Floors (from the issue; printed as PASS/FAIL, the exit status is always 0): an OpenMM step
costs at most 1.2x a bare evaluation; mlff's ASE MD step at most 0.5x MACECalculator's.

Usage::

    .venv/bin/python benchmarks/md.py --quick        # ethanol and 192 atoms, 3 short rounds: ~1 min
    .venv/bin/python benchmarks/md.py                # all three systems, 5 rounds (~10 min on a free core)
    .venv/bin/python benchmarks/md.py --model models # the MACE size of benchmarks/models.py
    .venv/bin/python benchmarks/md.py --systems water192 --routes bare ase --rounds 9
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"

SPECIES = (1, 6, 8)  # H, C, O: ethanol and water
#: E0 per element (eV, about the isolated atoms' energies) and scale of the model's energies
REFERENCE_ENERGIES = {1: -13.6, 6: -1029.0, 8: -2042.0}
SCALE = 0.1  # random weights give ~eV/atom energies; scaled down the MD stays gentle
TEMPERATURE_K = 300.0
SEED = 0

#: MACE hyperparameters (mlff config names); the peer gets the same (see peer_model()).
SMALL_MACE: Dict[str, object] = dict(
    cutoff=5.0, n_channels=32, hidden_l_max=1, l_max=2, correlation=2, n_interactions=2, n_basis=8,
    envelope_exponent=5, radial_hidden=(32, 32), readout_hidden=16, avg_num_neighbors=50.0,
)
MODEL_SIZES = ("small", "models")


def model_hyper(size: str) -> Dict[str, object]:
    """``small``: fast enough for several systems on a loaded 2-core machine; ``models``: the
    MACE of ``benchmarks/models.py`` (64 channels, l_max 3, correlation 3)."""
    if size == "small":
        return dict(SMALL_MACE)
    sys.path.insert(0, str(HERE))
    from models import FAMILIES

    return {k: tuple(v) if isinstance(v, list) else v for k, v in FAMILIES["mace"].hyper.items()}


SYSTEMS = ("ethanol", "water192", "water1536")
ROUTES = ("bare", "ase", "torchforce", "pythonforce", "mace-torch")
OPENMM_ROUTES = ("torchforce", "pythonforce")
TORCHFORCE_WARMUP = 15  # warm-up steps of TorchForce at least (see benchmark_system)
FLOOR_OPENMM = 1.2  # OpenMM step / bare evaluation, at most
FLOOR_ASE_VS_MACE = 0.5  # mlff ASE step / MACECalculator step, at most


# --------------------------------------------------------------------------------------------
# Structures (plain arrays, so that the peer worker gets exactly the same ones)
# --------------------------------------------------------------------------------------------


def build_system(name: str) -> dict:
    """Numbers, positions (Angstrom), cell, pbc and velocities (Angstrom/fs) of a system."""
    import ase.build
    from ase import units
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    if name == "ethanol":
        atoms = ase.build.molecule("CH3CH2OH")
    elif name.startswith("water"):
        sys.path.insert(0, str(HERE))
        from models import water_box

        atoms = water_box(int(name[len("water") :]), seed=SEED)
    else:
        raise ValueError(f"unknown system {name!r}; choose from {SYSTEMS}")
    thermalize_momenta(atoms, temperature_K=TEMPERATURE_K, rng=np.random.default_rng(SEED))
    Stationary(atoms)
    return {
        "name": name,
        "numbers": atoms.get_atomic_numbers().tolist(),
        "positions": atoms.get_positions().tolist(),
        "cell": np.asarray(atoms.get_cell()).tolist(),
        "pbc": [bool(p) for p in atoms.get_pbc()],
        "velocities": (atoms.get_velocities() * units.fs).tolist(),  # Angstrom/fs
    }


def to_atoms(system: dict):
    import ase
    from ase import units

    atoms = ase.Atoms(
        numbers=system["numbers"], positions=system["positions"], cell=system["cell"], pbc=system["pbc"]
    )
    atoms.set_velocities(np.asarray(system["velocities"]) / units.fs)
    return atoms


# --------------------------------------------------------------------------------------------
# mlff routes (this process, .venv)
# --------------------------------------------------------------------------------------------


def timed(function, steps: int) -> Tuple[float, float]:
    """(wall, CPU) seconds of ``function(steps)``; CPU time is this process's, all threads."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(steps)
    return time.perf_counter() - wall, time.process_time() - cpu


class Route:
    """Something that advances (or evaluates) ``steps`` times: ``run(steps)`` -> seconds."""

    name = ""
    n_edges = -1
    temperature = float("nan")  # K, after the last block (ASE routes: is the MD still sane?)

    def run(self, steps: int) -> Tuple[float, float]:
        """Advance ``steps`` steps; returns (wall, CPU) seconds of this process."""
        raise NotImplementedError


class BareRoute(Route):
    """The deployed module on fixed inputs, neighbour list built once."""

    name = "bare"

    def __init__(self, path: str, system: dict, dtype):
        import torch

        import mlff
        from mlff.neighbors import neighbor_list

        self.torch = torch
        self.module = mlff.load_potential(path)
        positions = torch.tensor(system["positions"], dtype=dtype)
        pbc = torch.tensor(system["pbc"])
        cell = torch.tensor(system["cell"], dtype=dtype) if bool(pbc.any()) else torch.zeros(3, 3, dtype=dtype)
        edge_index, cell_shifts = neighbor_list(
            positions, cell.unsqueeze(0), pbc.unsqueeze(0), self.module.cutoff,
            torch.zeros(len(positions), dtype=torch.long),
        )
        self.inputs = (positions, torch.tensor(system["numbers"]), cell, pbc, edge_index, cell_shifts)
        self.n_edges = int(edge_index.shape[1])

    def run(self, steps: int) -> Tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        with self.torch.jit.optimized_execution(False):
            for _ in range(steps):
                self.module(*self.inputs)["forces"]
        return time.perf_counter() - wall, time.process_time() - cpu


class AseRoute(Route):
    """mlff.MLFFCalculator under ASE's VelocityVerlet."""

    name = "ase"

    def __init__(self, path: str, system: dict, timestep_fs: float):
        from ase import units
        from ase.md.verlet import VelocityVerlet

        import mlff

        self.atoms = to_atoms(system)
        self.atoms.calc = mlff.MLFFCalculator(path)
        self.dynamics = VelocityVerlet(self.atoms, timestep=timestep_fs * units.fs)

    def run(self, steps: int) -> Tuple[float, float]:
        times = timed(self.dynamics.run, steps)
        self.temperature = self.atoms.get_temperature()
        return times


class OpenMMRoute(Route):
    """A System with only the mlff Force, VerletIntegrator, CPU platform on one thread."""

    def __init__(self, path: str, system: dict, timestep_fs: float, backend: str):
        import torch  # noqa: F401  (before openmm)
        import openmm
        import openmm.app as app
        import openmm.unit as unit

        from mlff.engines.openmm import create_force
        from mlff.units import NM_TO_ANGSTROM

        self.name = "torchforce" if backend == "torch" else "pythonforce"
        topology = app.Topology()
        chain = topology.addChain()
        residue = topology.addResidue("MOL", chain)
        for z in system["numbers"]:
            element = app.Element.getByAtomicNumber(int(z))
            topology.addAtom(element.symbol, element, residue)
        omm_system = openmm.System()
        for z in system["numbers"]:
            omm_system.addParticle(app.Element.getByAtomicNumber(int(z)).mass)
        periodic = any(system["pbc"])
        if periodic:
            box = [openmm.Vec3(*row) / NM_TO_ANGSTROM for row in system["cell"]] * unit.nanometer
            topology.setPeriodicBoxVectors(box)
            omm_system.setDefaultPeriodicBoxVectors(*box)
        omm_system.addForce(create_force(topology, path, backend=backend))
        integrator = openmm.VerletIntegrator(timestep_fs * unit.femtosecond)
        platform = openmm.Platform.getPlatformByName("CPU")
        self.context = openmm.Context(omm_system, integrator, platform, {"Threads": "1"})
        self.context.setPositions(np.asarray(system["positions"]) / NM_TO_ANGSTROM * unit.nanometer)
        # Angstrom/fs -> nm/ps: x (1 / NM_TO_ANGSTROM) nm/Angstrom x 1000 fs/ps
        velocities = np.asarray(system["velocities"]) * (1000.0 / NM_TO_ANGSTROM)  # nm/ps
        self.context.setVelocities(velocities * unit.nanometer / unit.picosecond)
        self.integrator = integrator

    def run(self, steps: int) -> Tuple[float, float]:
        return timed(self.integrator.step, steps)


# --------------------------------------------------------------------------------------------
# mace-torch route: a persistent worker in the peers' environment
# --------------------------------------------------------------------------------------------


class PeerRoute(Route):
    """Proxy of one system's MACECalculator MD in the peer worker."""

    name = "mace-torch"

    def __init__(self, worker: "PeerWorker", system: dict, timestep_fs: float):
        self.worker = worker
        self.system_name = system["name"]
        worker.request({"command": "system", "system": system, "timestep_fs": timestep_fs})

    def run(self, steps: int) -> Tuple[float, float]:
        reply = self.worker.request({"command": "run", "system": self.system_name, "steps": steps})
        self.temperature = float(reply["temperature"])
        return float(reply["wall"]), float(reply["cpu"])


class PeerWorker:
    """``md.py --peer-worker`` running in the peers' interpreter; one JSON line per message."""

    def __init__(self, python: str, hyper: dict, dtype: str, threads: int):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
        # its stderr goes to a file (a full pipe would block it), shown if it fails
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--peer-worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=str(ROOT),
        )
        reply = self.request({
            "command": "setup", "hyper": hyper, "dtype": dtype, "threads": threads,
            "reference_energies": {str(z): e for z, e in REFERENCE_ENERGIES.items()}, "scale": SCALE,
        })
        self.info = reply

    def request(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            self.log.seek(0)
            error = self.log.read()[-3000:]
            raise RuntimeError(f"the mace-torch worker stopped:\n{error}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the mace-torch worker failed: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()


def peer_model(hyper: dict, dtype, reference_energies: Dict[int, float], scale: float):
    """mace-torch ScaleShiftMACE with mlff's hyperparameters (mapping as in benchmarks/models.py)."""
    import torch
    from e3nn import o3
    from mace import modules

    species = sorted(reference_energies)
    k = hyper["n_channels"]
    hidden = "+".join(f"{k}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(hyper["hidden_l_max"] + 1))
    model = modules.ScaleShiftMACE(
        r_max=hyper["cutoff"],
        num_bessel=hyper["n_basis"],
        num_polynomial_cutoff=hyper["envelope_exponent"],
        max_ell=hyper["l_max"],
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=hyper["n_interactions"],
        num_elements=len(species),
        hidden_irreps=o3.Irreps(hidden),
        MLP_irreps=o3.Irreps(f"{hyper['readout_hidden']}x0e"),
        atomic_energies=np.array([reference_energies[z] for z in species]),
        avg_num_neighbors=hyper["avg_num_neighbors"],
        atomic_numbers=species,
        correlation=hyper["correlation"],
        gate=torch.nn.functional.silu,
        radial_MLP=list(hyper["radial_hidden"]),
        atomic_inter_scale=scale,
        atomic_inter_shift=0.0,
    )
    return model.to(dtype).eval()


def peer_worker_main() -> None:
    """The peer worker's loop (runs in .venv-peers; never imports mlff)."""
    # replies go to the real stdout; anything the libraries print goes to stderr
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    import logging

    import mace  # noqa: F401  (first: it sets what e3nn 0.4.4 needs to load its constants)
    import torch
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from mace.calculators import MACECalculator

    logging.disable(logging.WARNING)
    calculator = None
    runs = {}
    for line in sys.stdin:
        message = json.loads(line)
        try:
            command = message["command"]
            if command == "setup":
                torch.set_num_threads(int(message["threads"]))
                dtype = getattr(torch, message["dtype"])
                energies = {int(z): float(e) for z, e in message["reference_energies"].items()}
                model = peer_model(message["hyper"], dtype, energies, float(message["scale"]))
                calculator = MACECalculator(models=model, device="cpu", default_dtype=message["dtype"])
                import e3nn

                reply = {
                    "n_parameters": int(sum(p.numel() for p in model.parameters())),
                    "versions": {"torch": torch.__version__, "mace-torch": mace.__version__, "e3nn": e3nn.__version__},
                }
            elif command == "system":
                atoms = to_atoms(message["system"])
                atoms.calc = calculator
                runs[message["system"]["name"]] = VelocityVerlet(atoms, timestep=message["timestep_fs"] * units.fs)
                reply = {}
            elif command == "run":
                dynamics = runs[message["system"]]
                wall, cpu = timed(dynamics.run, int(message["steps"]))
                reply = {"wall": wall, "cpu": cpu, "temperature": dynamics.atoms.get_temperature()}
            else:
                reply = {"error": f"unknown command {command!r}"}
        except Exception as error:  # reported to the driver
            import traceback

            reply = {"error": f"{type(error).__name__}: {error}\n{traceback.format_exc()}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def deploy_potential(hyper: dict, dtype, path: str) -> int:
    """Build a random mlff MACE potential with E0 and scale, deploy it to ``path``; returns its
    parameter count."""
    import torch

    import mlff
    import mlff.models

    torch.manual_seed(SEED)
    model = mlff.models.build("mace", species=SPECIES, **hyper)
    potential = mlff.Potential(model, reference_energies=REFERENCE_ENERGIES, scale=SCALE).to(dtype).eval()
    mlff.deploy(potential, path, metadata={"model": "mace", "hyper": {k: v for k, v in hyper.items()}})
    return int(sum(p.numel() for p in potential.parameters()))


def benchmark_system(routes: Dict[str, Route], rounds: int, block_s: float, warmup: int, log) -> dict:
    """Warm every route up, calibrate its block length, then run interleaved rounds.

    Returns per round and route the (wall, CPU) seconds per step.
    """
    steps = {}
    for name, route in routes.items():
        # TorchForce: TorchScript's profiling executor (which openmm-torch runs, out of the
        # engine's reach) optimises the graph anew for each of the first dozen edge counts
        n_warmup = max(warmup, TORCHFORCE_WARMUP) if name == "torchforce" else warmup
        _, first = route.run(n_warmup)
        _, cpu = route.run(2)
        steps[name] = max(1, int(round(block_s / max(cpu / 2, 1e-6))))
        log(f"  {name:<12} {n_warmup} warm-up steps ({first / n_warmup * 1e3:.1f} CPU ms/step), then "
            f"{cpu / 2 * 1e3:.2f} CPU ms/step -> {steps[name]} steps per block")
    per_round: List[Dict[str, Tuple[float, float]]] = []
    names = list(routes)
    loads = []
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        times = {}
        for name in order:
            wall, cpu = routes[name].run(steps[name])
            times[name] = (wall / steps[name], cpu / steps[name])
        per_round.append({name: times[name] for name in names})
        loads.append(os.getloadavg()[0])
        log(f"  round {r + 1}: " + "  ".join(f"{n} {times[n][1] * 1e3:.2f} ({times[n][0] * 1e3:.2f})" for n in names)
            + " CPU (wall) ms/step")
    temperatures = {name: route.temperature for name, route in routes.items() if route.temperature == route.temperature}
    if temperatures:
        log("  temperature after the rounds (start 300 K): "
            + ", ".join(f"{name} {value:.0f} K" for name, value in temperatures.items()))
    return {"per_round": per_round, "steps": steps, "loads": loads, "temperatures": temperatures}


def ratio_text(values: List[float]) -> str:
    return f"{statistics.median(values):.2f}x [{min(values):.2f}..{max(values):.2f}]"


def print_table(results: dict, timestep_fs: float) -> List[str]:
    """The table of every system and route; returns the floors' PASS/FAIL lines."""
    floors = []
    cpu, wall = 1, 0
    print()
    print(f"== MD step cost, time step {timestep_fs:g} fs: medians over rounds; ratios per round, median [min..max] ==")
    print("   CPU: this process's CPU time per step (the cost; steady on a shared machine); wall: elapsed time;")
    print("   ns/day from CPU time (one free core); ratios on CPU time, wall-time ratio's median in parentheses")
    header = (f"{'system':<9} {'atoms':>5} {'edges':>6} {'route':<11} {'CPU ms':>8} {'wall ms':>8} {'ns/day':>7} "
              f"{'/ bare (wall)':>26} {'ase / mace-torch (wall)':>26}")
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        rounds = result["per_round"]
        routes = list(rounds[0])
        for route in routes:
            ms = statistics.median([r[route][cpu] for r in rounds]) * 1e3
            ms_wall = statistics.median([r[route][wall] for r in rounds]) * 1e3
            ns_day = timestep_fs * 1e-6 * 86400e3 / ms
            versus_bare = versus_mace = ""
            if "bare" in routes:
                ratios = [r[route][cpu] / r["bare"][cpu] for r in rounds]
                ratios_wall = [r[route][wall] / r["bare"][wall] for r in rounds]
                versus_bare = f"{ratio_text(ratios)} ({statistics.median(ratios_wall):.2f}x)"
                if route in OPENMM_ROUTES:
                    value = statistics.median(ratios)
                    verdict = "PASS" if value <= FLOOR_OPENMM else "FAIL"
                    floors.append(f"{verdict}  {name}: {route} step / bare evaluation = {ratio_text(ratios)} "
                                  f"(wall {statistics.median(ratios_wall):.2f}x; floor <= {FLOOR_OPENMM}x)")
            if route == "ase" and "mace-torch" in routes:
                ratios = [r["ase"][cpu] / r["mace-torch"][cpu] for r in rounds]
                ratios_wall = [r["ase"][wall] / r["mace-torch"][wall] for r in rounds]
                versus_mace = f"{ratio_text(ratios)} ({statistics.median(ratios_wall):.2f}x)"
                value = statistics.median(ratios)
                verdict = "PASS" if value <= FLOOR_ASE_VS_MACE else "FAIL"
                floors.append(f"{verdict}  {name}: mlff ASE step / MACECalculator step = {ratio_text(ratios)} "
                              f"(wall {statistics.median(ratios_wall):.2f}x; floor <= {FLOOR_ASE_VS_MACE}x)")
            print(f"{name:<9} {result['n_atoms']:>5} {result['n_edges']:>6} {route:<11} {ms:>8.2f} {ms_wall:>8.2f} "
                  f"{ns_day:>7.3f} {versus_bare:>26} {versus_mace:>26}")
        loads = result["loads"]
        print(f"{'':<9} load average (1 min) during the rounds {min(loads):.1f}..{max(loads):.1f} "
              f"on {os.cpu_count()} CPUs")
    print()
    print("== Floors of the issue (medians of per-round CPU-time ratios; the exit status is always 0) ==")
    for line in floors:
        print("  " + line)
    return floors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="ethanol and 192 atoms, 3 short rounds (< 1 min)")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=None,
                        help="default: all (quick: ethanol, water192)")
    parser.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES))
    parser.add_argument("--model", choices=MODEL_SIZES, default="small", help="MACE size (default small)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--block", type=float, default=None,
                        help="CPU seconds per route per round (default 1.5, quick 0.3)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps per route (default 5, quick 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenMM threads (default 1)")
    parser.add_argument("--peers-python", default=str(DEFAULT_PEERS_PYTHON), help="interpreter with mace-torch")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write all results to PATH")
    parser.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.systems is None:
        args.systems = ["ethanol", "water192"] if args.quick else list(SYSTEMS)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.block is None:
        args.block = 0.3 if args.quick else 1.5
    if args.warmup is None:
        args.warmup = 3 if args.quick else 5
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.peer_worker:
        peer_worker_main()
        return 0
    import torch  # noqa: I001  (before openmm)

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    hyper = model_hyper(args.model)

    def log(text: str) -> None:
        print(f"[md] {text}", flush=True)

    routes_wanted = list(args.routes)
    if any(r in OPENMM_ROUTES for r in routes_wanted) and "torchforce" in routes_wanted:
        from mlff.engines.openmm import openmmtorch_or_error

        try:
            openmmtorch_or_error()
        except RuntimeError as error:
            log(f"torchforce skipped: {error}")
            routes_wanted.remove("torchforce")
    worker = None
    if "mace-torch" in routes_wanted:
        if not Path(args.peers_python).exists():
            log(f"mace-torch skipped: no {args.peers_python} (run: bash benchmarks/setup_peers.sh)")
            routes_wanted.remove("mace-torch")
        else:
            worker = PeerWorker(args.peers_python, {k: v for k, v in hyper.items()}, args.dtype, args.threads)
    results = {}
    with tempfile.TemporaryDirectory(prefix="mlff-md-bench-") as folder:
        path = os.path.join(folder, "mace.pt")
        n_parameters = deploy_potential(hyper, dtype, path)
        log(f"model: mlff MACE {args.model} {dict(hyper)}, {args.dtype}, {n_parameters:,} parameters")
        if worker is not None:
            log(f"peer: mace-torch ScaleShiftMACE, same hyperparameters, {worker.info['n_parameters']:,} parameters, "
                f"{worker.info['versions']}")
        log(f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()}")
        try:
            for name in args.systems:
                system = build_system(name)
                log(f"{name}: {len(system['numbers'])} atoms")
                routes: Dict[str, Route] = {}
                for route in routes_wanted:
                    if route == "bare":
                        routes[route] = BareRoute(path, system, dtype)
                    elif route == "ase":
                        routes[route] = AseRoute(path, system, args.timestep)
                    elif route == "torchforce":
                        routes[route] = OpenMMRoute(path, system, args.timestep, "torch")
                    elif route == "pythonforce":
                        routes[route] = OpenMMRoute(path, system, args.timestep, "python")
                    elif route == "mace-torch":
                        routes[route] = PeerRoute(worker, system, args.timestep)
                result = benchmark_system(routes, args.rounds, args.block, args.warmup, log)
                result["n_atoms"] = len(system["numbers"])
                result["n_edges"] = routes["bare"].n_edges if "bare" in routes else -1
                results[name] = result
                del routes
        finally:
            if worker is not None:
                worker.close()
    floors = print_table(results, args.timestep)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "floors": floors}, indent=1))
        log(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
