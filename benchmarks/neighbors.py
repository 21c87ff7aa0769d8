"""Single-thread CPU benchmark of mlff's neighbour list against vesin, matscipy and ASE.

What is measured
----------------
1. **One-shot builds.** ``mlff.neighbors.neighbor_list`` is timed against

   * vesin:    ``vesin.NeighborList(cutoff, full_list=True).compute(points, box, True, "ijS")``
   * matscipy: ``matscipy.neighbours.neighbour_list("ijS", atoms, cutoff)``
   * ASE:      ``ase.neighborlist.neighbor_list("ijS", atoms, cutoff)``

   on periodic cubic boxes of liquid water (about 0.1 atoms / A^3) with, by default, 192,
   1 536, 12 288 and 98 304 atoms (4^3, 8^3, 16^3 and 32^3 molecules) and cutoffs of 5 and 6 A.
   Every library is asked for the same thing: a *full* list (each pair in both directions,
   i -> j and j -> i) with integer periodic shifts, in double precision, such that
   ``r_ij = r_j - r_i + S @ cell``. Each is called the way a user would call it, from its own
   input type (torch tensors for mlff, numpy arrays for vesin, an ``ase.Atoms`` for matscipy
   and ASE), and the time includes building the returned arrays. Building those inputs is not
   timed. The vesin calculator is created once per case and reused across calls, so it keeps
   its internal buffers; its Verlet skin is left at 0 (nothing is cached between calls) and its
   default ``copy=True`` is kept, so it returns arrays of its own like the other libraries.

   For every case the number of pairs of each peer is checked against mlff's (a warning is
   printed on a mismatch); for systems up to ``--check-max-atoms`` atoms the full sets of
   (i, j, S) are compared too.

   Timings are medians over back-to-back calls after warm-up calls, taken in three rounds that
   cycle over the libraries so that changes in machine load hit all of them alike. Repeats
   shrink with system size, and each library gets at most ``--budget`` seconds per case (at
   least one timed call); a call that alone takes longer than the budget (ASE at 100k atoms)
   is made once, and that single call is its timing.

2. **An MD-like sequence.** For 1 536 and 12 288 atoms, 100 steps of small displacements
   (rms about 0.015 A per step, with velocities that persist over about 10 steps, as atoms in
   MD at a 1 fs time step do) are fed to (a) ``neighbor_list`` called afresh at every step and
   (b) ``mlff.neighbors.VerletNeighborList(cutoff, skin=1.0)``, which keeps a list built with
   ``cutoff + skin`` until an atom has moved more than ``skin / 2``. Reported: total time of
   the 100 calls, number of list builds and the speed-up. The pair counts of (a) and (b) are
   compared at every step.

3. **Floors** (PASS/FAIL, the exit status is always 0): mlff faster than matscipy and than ASE
   at every size; at least 1.2x faster than vesin from 1.5k atoms up; time per atom at ~100k
   atoms within 2x of that at ~1.5k; Verlet-skin reuse at least 5x cheaper than rebuilding.

Everything runs on ONE thread: the thread-count variables are set before any import,
``torch.set_num_threads(1)`` is called and vesin is given ``n_threads=1``.

Usage::

    python benchmarks/neighbors.py            # full run (several minutes)
    python benchmarks/neighbors.py --quick    # 192 and 1 536 atoms, cutoff 5 (seconds)
    python benchmarks/neighbors.py --sizes 1536 12288 --cutoffs 5 --json results.json
"""

import os

# One thread everywhere; this must happen before numpy/torch/vesin are imported.
for _variable in (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
):
    os.environ[_variable] = "1"

import torch  # noqa: E402  (torch is imported before every other library on purpose)

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set by an embedding process
    pass

import argparse  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402

import ase  # noqa: E402
import ase.neighborlist  # noqa: E402
import matscipy  # noqa: E402
import matscipy.neighbours  # noqa: E402
import scipy.spatial  # noqa: E402
import vesin  # noqa: E402

import mlff  # noqa: E402
import mlff._ops  # noqa: E402
from mlff.neighbors import VerletNeighborList, neighbor_list  # noqa: E402

PEERS = ("vesin", "matscipy", "ase")

# Liquid water at 298 K: 0.997 g/cm^3 is 0.03334 molecules (0.1000 atoms) per A^3.
WATER_MOLECULES_PER_A3 = 0.03334
OH_BOND = 0.9572  # A, TIP3P-like rigid geometry
HOH_ANGLE = math.radians(104.52)

DEFAULT_SIZES = [192, 1536, 12288, 98304]  # 3 * (4^3, 8^3, 16^3, 32^3)
QUICK_SIZES = [192, 1536]
DEFAULT_CUTOFFS = [5.0, 6.0]
QUICK_CUTOFFS = [5.0]

# Floors the op is expected to meet.
FLOOR_VESIN_RATIO = 1.2  # vesin time / mlff time, from FLOOR_VESIN_MIN_ATOMS atoms up
FLOOR_VESIN_MIN_ATOMS = 1500
FLOOR_PER_ATOM_GROWTH = 2.0  # (us/atom at ~100k) / (us/atom at ~1.5k)
FLOOR_SKIN_SPEEDUP = 5.0


# --------------------------------------------------------------------------------------------
# Water boxes
# --------------------------------------------------------------------------------------------


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rotation matrices drawn uniformly (normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=1,
    )


def _wrap(positions: np.ndarray, length: float) -> np.ndarray:
    wrapped = np.mod(positions, length)
    wrapped[wrapped >= length] = 0.0  # np.mod can round up to exactly `length`
    return wrapped


def water_box(
    n_atoms: int,
    seed: int = 0,
    jitter: float = 0.15,
    min_intermolecular: float = 1.5,
    max_sweeps: int = 200,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A periodic cubic box of rigid water molecules at liquid density.

    Oxygens sit on a simple cubic lattice (spacing about 3.1 A when the number of molecules is
    a cube, sites left empty at random otherwise), jittered by ``jitter`` A (Gaussian, per
    component); every molecule gets a uniformly random orientation. Molecules with an atom
    closer than ``min_intermolecular`` A to an atom of another molecule are re-oriented and
    re-jittered until no such contact is left (or ``max_sweeps`` is reached), which keeps
    H...O contacts at hydrogen-bond-like distances.

    Returns ``(positions (3 n_mol, 3) wrapped into the box, cell (3, 3), atomic numbers)``,
    atoms ordered O, H, H per molecule.
    """
    n_mol = max(1, int(round(n_atoms / 3)))
    rng = np.random.default_rng(seed)
    length = (n_mol / WATER_MOLECULES_PER_A3) ** (1.0 / 3.0)
    per_side = int(math.ceil(n_mol ** (1.0 / 3.0) - 1e-9))
    spacing = length / per_side

    grid = np.stack(
        np.meshgrid(*(np.arange(per_side),) * 3, indexing="ij"), axis=-1
    ).reshape(-1, 3)
    sites = grid[np.sort(rng.choice(len(grid), size=n_mol, replace=False))]
    sites = (sites + 0.5) * spacing

    half = 0.5 * HOH_ANGLE
    template = np.array(
        [
            [0.0, 0.0, 0.0],
            [OH_BOND * math.sin(half), 0.0, OH_BOND * math.cos(half)],
            [-OH_BOND * math.sin(half), 0.0, OH_BOND * math.cos(half)],
        ]
    )

    def place(molecules: np.ndarray) -> None:
        centres = sites[molecules] + rng.normal(scale=jitter, size=(len(molecules), 3))
        rotated = np.einsum("mij,aj->mai", _random_rotations(rng, len(molecules)), template)
        positions[3 * molecules[:, None] + np.arange(3)] = centres[:, None, :] + rotated

    positions = np.empty((3 * n_mol, 3))
    place(np.arange(n_mol))
    for _ in range(max_sweeps):
        positions = _wrap(positions, length)
        tree = scipy.spatial.cKDTree(positions, boxsize=length)
        pairs = tree.query_pairs(min_intermolecular, output_type="ndarray")
        pairs = pairs[pairs[:, 0] // 3 != pairs[:, 1] // 3]
        if len(pairs) == 0:
            break
        place(np.unique(pairs // 3))
    positions = _wrap(positions, length)

    cell = np.eye(3) * length
    numbers = np.tile(np.array([8, 1, 1]), n_mol)
    return positions, cell, numbers


# --------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------


def time_in_rounds(
    calls: Dict[str, Callable[[], object]],
    repeats: int,
    budget_s: float,
    summarize: Callable[[str, object], object],
    rounds: int = 3,
) -> Tuple[Dict[str, object], Dict[str, List[float]], Dict[str, Dict[str, float]]]:
    """Time each callable back to back, in a few rounds that cycle over the callables.

    Returns ``(summarize(name, result of the first call) of each, timed durations in seconds
    of each, CPU usage per timed call of each)``; only the summaries are kept, so large results
    are freed before any timing. The CPU usage (``getrusage``: user and system seconds, minor
    page faults) shows how much of a call is spent in the kernel, e.g. faulting in fresh memory.

    The first call of each callable is untimed. Each is then timed up to ``repeats`` times,
    fewer if that would take more than ``budget_s`` seconds, but at least once; a callable whose
    first call alone took longer than ``budget_s`` is not called again and that first call is
    its only sample (warm-up effects are negligible at that scale). The timed calls are split
    into ``rounds`` blocks: in every round each callable runs one block of back-to-back calls,
    after one untimed call when that is cheap (under 0.5 s) so that every block starts from the
    callable's own steady state (caches, allocator). Back-to-back blocks measure each library
    on its own, as usual; the rounds spread slow changes of the machine's load over all of them.
    """
    summaries: Dict[str, object] = {}
    first_s: Dict[str, float] = {}
    planned: Dict[str, int] = {}
    samples: Dict[str, List[float]] = {name: [] for name in calls}
    usage = {name: [0.0, 0.0, 0.0] for name in calls}  # user s, system s, minor faults

    def account(name: str, before: resource.struct_rusage) -> None:
        after = resource.getrusage(resource.RUSAGE_SELF)
        usage[name][0] += after.ru_utime - before.ru_utime
        usage[name][1] += after.ru_stime - before.ru_stime
        usage[name][2] += after.ru_minflt - before.ru_minflt

    for name, fn in calls.items():
        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        result = fn()
        first_s[name] = time.perf_counter() - start
        if budget_s > 0 and first_s[name] > budget_s:
            account(name, before)
        summaries[name] = summarize(name, result)
        del result
        if budget_s > 0 and first_s[name] > budget_s:
            samples[name].append(first_s[name])
            planned[name] = 0
        elif budget_s > 0 and first_s[name] * repeats > budget_s:
            planned[name] = max(1, int(budget_s / first_s[name]))
        else:
            planned[name] = repeats

    for round_ in range(rounds):
        for name, fn in calls.items():
            # calls of this round: an even share of the planned total
            block = planned[name] * (round_ + 1) // rounds - planned[name] * round_ // rounds
            if block == 0:
                continue
            gc.collect()
            if first_s[name] < 0.5:
                fn()
            gc.disable()
            before = resource.getrusage(resource.RUSAGE_SELF)
            try:
                for _ in range(block):
                    start = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - start)
            finally:
                account(name, before)
                gc.enable()
    per_call = {
        name: {
            "user_s": user / len(samples[name]),
            "system_s": system / len(samples[name]),
            "minor_faults": faults / len(samples[name]),
        }
        for name, (user, system, faults) in usage.items()
    }
    return summaries, samples, per_call


def default_repeats(n_atoms: int, quick: bool) -> int:
    if n_atoms <= 1000:
        repeats = 100
    elif n_atoms <= 5000:
        repeats = 30
    elif n_atoms <= 30000:
        repeats = 10
    else:
        repeats = 5
    return max(3, repeats // 3) if quick else repeats


# --------------------------------------------------------------------------------------------
# The libraries, each asked for a full list with shifts
# --------------------------------------------------------------------------------------------


def make_callers(
    positions: np.ndarray, cell: np.ndarray, numbers: np.ndarray, cutoff: float
) -> Dict[str, Callable[[], Tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """One zero-argument callable per library, returning what the library returns.

    mlff returns ``(edge_index, cell_shifts)``, the others ``(i, j, S)``; :func:`as_ijs`
    brings both to ``(i, j, S)``, outside the timed calls.
    """
    t_positions = torch.from_numpy(positions.copy())
    t_cell = torch.from_numpy(cell.copy())
    t_pbc = torch.tensor([True, True, True])

    def call_mlff():
        return neighbor_list(t_positions, t_cell, t_pbc, cutoff)

    calculator = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=1)
    v_points = np.ascontiguousarray(positions)
    v_box = np.ascontiguousarray(cell)

    def call_vesin():
        return calculator.compute(v_points, v_box, True, quantities="ijS")

    atoms = ase.Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)

    def call_matscipy():
        return matscipy.neighbours.neighbour_list("ijS", atoms, cutoff)

    def call_ase():
        return ase.neighborlist.neighbor_list("ijS", atoms, cutoff)

    return {"mlff": call_mlff, "vesin": call_vesin, "matscipy": call_matscipy, "ase": call_ase}


def _as_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.numpy()
    return np.asarray(array)


def as_ijs(name: str, result) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The result of library ``name`` as numpy arrays (i, j, S)."""
    if name == "mlff":
        edge_index, shifts = result
        result = (edge_index[0], edge_index[1], shifts)
    return tuple(_as_numpy(x) for x in result)


def sorted_pairs(ijs) -> np.ndarray:
    """(i, j, S) as one int64 array of rows (i, j, S0, S1, S2), sorted lexicographically."""
    i, j, shifts = (x.astype(np.int64) for x in ijs)
    rows = np.column_stack([i, j, shifts.reshape(-1, 3)])
    order = np.lexsort(rows.T[::-1])
    return rows[order]


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


def bench_case(
    n_target: int, cutoff: float, args, warnings: List[str]
) -> Dict[str, object]:
    """Time every library on one (size, cutoff) case and check their pair counts."""
    positions, cell, numbers = water_box(n_target, seed=args.seed)
    n_atoms = len(positions)
    callers = make_callers(positions, cell, numbers, cutoff)
    repeats = args.repeats if args.repeats else default_repeats(n_atoms, args.quick)

    skip_ase = bool(args.ase_max_atoms) and n_atoms > args.ase_max_atoms
    peers = [p for p in args.peers if not (p == "ase" and skip_ase)]
    compare_sets = n_atoms <= args.check_max_atoms

    def summarize(name, result):
        ijs = as_ijs(name, result)
        return int(len(ijs[0])), sorted_pairs(ijs) if compare_sets else None

    summaries, timings, cpu_per_call = time_in_rounds(
        {name: callers[name] for name in ["mlff"] + peers}, repeats, args.budget, summarize
    )
    counts = {name: summary[0] for name, summary in summaries.items()}
    results = {name: summary[1] for name, summary in summaries.items() if summary[1] is not None}
    del summaries

    for name in peers:
        if counts[name] != counts["mlff"]:
            warnings.append(
                f"{n_atoms} atoms, cutoff {cutoff:g}: {name} returned {counts[name]} pairs, "
                f"mlff {counts['mlff']}"
            )
        elif name in results and not np.array_equal(results[name], results["mlff"]):
            warnings.append(
                f"{n_atoms} atoms, cutoff {cutoff:g}: {name} returned as many pairs as mlff "
                "but a different set of (i, j, S)"
            )
    set_checked = bool(results)
    del results

    median = {name: statistics.median(samples) for name, samples in timings.items()}
    return {
        "n_atoms": n_atoms,
        "cutoff": cutoff,
        "box_length": float(cell[0, 0]),
        "n_pairs": counts["mlff"],
        "pair_counts": counts,
        "pair_sets_compared": set_checked,
        "median_s": median,
        "samples_s": timings,
        "cpu_per_call": cpu_per_call,
        "ratio_to_mlff": {p: median[p] / median["mlff"] for p in peers},
        "mlff_us_per_atom": 1e6 * median["mlff"] / n_atoms,
        "pairs_per_s": {
            name: counts[name] / median[name] for name in ("mlff", "vesin") if name in median
        },
    }


def md_displacements(
    n_atoms: int, n_steps: int, step: float, memory: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-step displacements (n_steps, n_atoms, 3) of an MD-like random motion.

    Velocities follow an Ornstein-Uhlenbeck process with a correlation time of ``memory`` steps
    and an rms displacement of ``step`` A per step, so atoms drift as in MD instead of
    jiggling in place.
    """
    sigma = step / math.sqrt(3.0)  # per component
    decay = math.exp(-1.0 / memory) if memory > 0 else 0.0
    kick = math.sqrt(1.0 - decay * decay)
    velocity = rng.normal(scale=sigma, size=(n_atoms, 3))
    out = np.empty((n_steps, n_atoms, 3))
    for t in range(n_steps):
        velocity = decay * velocity + kick * rng.normal(scale=sigma, size=(n_atoms, 3))
        out[t] = velocity
    return out


def bench_md(n_target: int, args, warnings: List[str]) -> Dict[str, object]:
    """Rebuild-every-step versus Verlet-skin reuse over an MD-like trajectory."""
    positions, cell, _ = water_box(n_target, seed=args.seed)
    n_atoms = len(positions)
    rng = np.random.default_rng(args.seed + 1)
    steps = md_displacements(n_atoms, args.md_steps - 1, args.md_step, args.md_memory, rng)
    trajectory = np.concatenate([positions[None], positions[None] + np.cumsum(steps, axis=0)])
    frames = [torch.from_numpy(frame.copy()) for frame in trajectory]
    t_cell = torch.from_numpy(cell.copy())
    t_pbc = torch.tensor([True, True, True])
    cutoff, skin = args.md_cutoff, args.md_skin

    def run_rebuild() -> Tuple[float, List[int]]:
        counts = []
        start = time.perf_counter()
        for frame in frames:
            edge_index, _ = neighbor_list(frame, t_cell, t_pbc, cutoff)
            counts.append(edge_index.shape[1])
        return time.perf_counter() - start, counts

    def run_verlet(exact: bool = True) -> Tuple[float, List[int], int]:
        verlet = VerletNeighborList(cutoff, skin=skin, exact=exact)
        counts = []
        start = time.perf_counter()
        for frame in frames:
            edge_index, _ = verlet(frame, t_cell, t_pbc)
            counts.append(edge_index.shape[1])
        return time.perf_counter() - start, counts, verlet.n_builds

    # Warm-up on a few frames, then alternate the two strategies.
    warm_verlet = VerletNeighborList(cutoff, skin=skin)
    for frame in frames[:3]:
        neighbor_list(frame, t_cell, t_pbc, cutoff)
        warm_verlet(frame, t_cell, t_pbc)
    rebuild_times, verlet_times, superset_times = [], [], []
    md_repeats = 1 if args.quick else args.md_repeats
    gc.collect()
    for _ in range(md_repeats):
        elapsed, rebuild_counts = run_rebuild()
        rebuild_times.append(elapsed)
        elapsed, verlet_counts, n_builds = run_verlet()
        verlet_times.append(elapsed)
        elapsed, _, _ = run_verlet(exact=False)
        superset_times.append(elapsed)

    if rebuild_counts != verlet_counts:
        bad = sum(a != b for a, b in zip(rebuild_counts, verlet_counts))
        warnings.append(
            f"MD {n_atoms} atoms: VerletNeighborList and neighbor_list disagree on the pair count "
            f"at {bad} of {len(frames)} steps"
        )

    total = trajectory[-1] - trajectory[0]
    rebuild_s = statistics.median(rebuild_times)
    verlet_s = statistics.median(verlet_times)
    return {
        "n_atoms": n_atoms,
        "cutoff": cutoff,
        "skin": skin,
        "n_steps": len(frames),
        "rms_step_A": float(np.sqrt((steps**2).sum(axis=2).mean())),
        "max_total_displacement_A": float(np.linalg.norm(total, axis=1).max()),
        "rebuild_s": rebuild_s,
        "verlet_s": verlet_s,
        "rebuild_samples_s": rebuild_times,
        "verlet_samples_s": verlet_times,
        "rebuild_builds": len(frames),
        "verlet_builds": n_builds,
        "speedup": rebuild_s / verlet_s,
        # exact=False: the stored cutoff+skin list is returned as is (an MD engine's Verlet list)
        "superset_s": statistics.median(superset_times),
        "superset_speedup": rebuild_s / statistics.median(superset_times),
    }


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{1e3 * seconds:.3f}" if seconds < 0.1 else f"{1e3 * seconds:.1f}"


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(cases: List[Dict[str, object]]) -> None:
    header = (
        f"{'atoms':>7} {'rc':>3} {'pairs':>10} | {'mlff ms':>9} {'vesin ms':>9} {'matsci ms':>9} "
        f"{'ase ms':>9} | {'vesin/':>7} {'matsci/':>7} {'ase/':>7} | {'mlff':>7} | "
        f"{'mlff':>7} {'vesin':>7}"
    )
    header2 = (
        f"{'':>7} {'A':>3} {'(full)':>10} | {'':>9} {'':>9} {'':>9} {'':>9} | "
        f"{'mlff':>7} {'mlff':>7} {'mlff':>7} | {'us/atom':>7} | {'Mpair/s':>7} {'Mpair/s':>7}"
    )
    print(header)
    print(header2)
    print("-" * len(header))
    for case in cases:
        median = case["median_s"]
        ratio = case["ratio_to_mlff"]
        rate = case["pairs_per_s"]
        print(
            f"{case['n_atoms']:>7} {case['cutoff']:>3g} {case['n_pairs']:>10} | "
            f"{_ms(median.get('mlff')):>9} {_ms(median.get('vesin')):>9} "
            f"{_ms(median.get('matscipy')):>9} {_ms(median.get('ase')):>9} | "
            f"{_ratio(ratio.get('vesin')):>7} {_ratio(ratio.get('matscipy')):>7} "
            f"{_ratio(ratio.get('ase')):>7} | {case['mlff_us_per_atom']:>7.3f} | "
            f"{rate['mlff'] / 1e6:>7.1f} "
            + (f"{rate['vesin'] / 1e6:>7.1f}" if "vesin" in rate else f"{'-':>7}")
        )


def print_cpu_table(cases: List[Dict[str, object]]) -> None:
    names = [n for n in ("mlff", "vesin") if all(n in c["cpu_per_call"] for c in cases)]
    header = f"{'atoms':>7} {'rc':>3} | " + " | ".join(
        f"{name + ' user':>10} {'system':>7} {'faults':>7}" for name in names
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        cells = []
        for name in names:
            use = case["cpu_per_call"][name]
            cells.append(
                f"{1e3 * use['user_s']:>8.2f}ms {1e3 * use['system_s']:>5.2f}ms {use['minor_faults']:>7.0f}"
            )
        print(f"{case['n_atoms']:>7} {case['cutoff']:>3g} | " + " | ".join(cells))


def print_md_table(runs: List[Dict[str, object]]) -> None:
    header = (
        f"{'atoms':>7} {'rc':>3} {'skin':>4} {'steps':>5} {'rms step':>8} {'max drift':>9} | "
        f"{'rebuild ms':>10} {'builds':>6} | {'verlet ms':>9} {'builds':>6} | {'speedup':>7} | "
        f"{'superset ms':>11} {'speedup':>7}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run['n_atoms']:>7} {run['cutoff']:>3g} {run['skin']:>4g} {run['n_steps']:>5} "
            f"{run['rms_step_A']:>7.4f}A {run['max_total_displacement_A']:>8.3f}A | "
            f"{1e3 * run['rebuild_s']:>10.1f} {run['rebuild_builds']:>6} | "
            f"{1e3 * run['verlet_s']:>9.1f} {run['verlet_builds']:>6} | {run['speedup']:>6.1f}x | "
            f"{1e3 * run['superset_s']:>11.1f} {run['superset_speedup']:>6.1f}x"
        )
    print(
        "  verlet: exact=True, exactly the pairs within the cutoff every step;\n"
        "  superset: exact=False, the stored cutoff+skin list as MD engines use it (pairs within the cutoff are exact)"
    )


def evaluate_floors(cases: List[Dict[str, object]], md_runs: List[Dict[str, object]]) -> List[Dict[str, str]]:
    """PASS / FAIL / SKIP for each floor, with the worst case as detail."""
    floors = []

    def worst(peer: str, covered: Callable[[Dict[str, object]], bool], threshold: float, label: str):
        """Floor on peer_time / mlff_time >= threshold over the covered cases."""
        selected = [c for c in cases if peer in c["ratio_to_mlff"] and covered(c)]
        if not selected:
            detail = f"no case covered by this floor with {peer} measured"
            floors.append({"floor": label, "status": "SKIP", "detail": detail})
            return
        low = min(selected, key=lambda c: c["ratio_to_mlff"][peer])
        value = low["ratio_to_mlff"][peer]
        floors.append(
            {
                "floor": label,
                "status": "PASS" if value >= threshold else "FAIL",
                "detail": f"worst {peer}/mlff = {value:.2f}x at {low['n_atoms']} atoms, "
                f"rc {low['cutoff']:g} (of {len(selected)} cases)",
            }
        )

    worst("matscipy", lambda c: True, 1.0, "mlff faster than matscipy at every size")
    worst("ase", lambda c: True, 1.0, "mlff faster than ASE at every size")
    worst(
        "vesin",
        lambda c: c["n_atoms"] >= FLOOR_VESIN_MIN_ATOMS,
        FLOOR_VESIN_RATIO,
        f">= {FLOOR_VESIN_RATIO}x vesin from {FLOOR_VESIN_MIN_ATOMS} atoms up",
    )

    label = f"us/atom at ~100k within {FLOOR_PER_ATOM_GROWTH:g}x of ~1.5k"
    sizes = sorted({c["n_atoms"] for c in cases})
    large = [n for n in sizes if n >= 50000]
    if not large or not sizes:
        floors.append({"floor": label, "status": "SKIP", "detail": "no size >= 50k atoms measured"})
    else:
        big = max(large)
        small = min(sizes, key=lambda n: abs(math.log(n / 1500)))
        details, ok = [], True
        for cutoff in sorted({c["cutoff"] for c in cases}):
            per_atom = {c["n_atoms"]: c["mlff_us_per_atom"] for c in cases if c["cutoff"] == cutoff}
            if big in per_atom and small in per_atom:
                growth = per_atom[big] / per_atom[small]
                ok = ok and growth <= FLOOR_PER_ATOM_GROWTH
                details.append(
                    f"rc {cutoff:g}: {per_atom[big]:.3f} / {per_atom[small]:.3f} us/atom = {growth:.2f}x"
                )
        floors.append(
            {
                "floor": label,
                "status": "PASS" if ok else "FAIL",
                "detail": f"{big} vs {small} atoms, " + "; ".join(details),
            }
        )

    # measured on both modes, reported separately: exact (the pairs within the cutoff, written
    # out every step) and superset (the cutoff+skin list kept as is, as MD engines use it)
    for key, mode in (("speedup", "exact list"), ("superset_speedup", "superset list")):
        label = f"Verlet skin reuse >= {FLOOR_SKIN_SPEEDUP:g}x cheaper than rebuilding ({mode})"
        if not md_runs:
            floors.append({"floor": label, "status": "SKIP", "detail": "no MD sequence run"})
            continue
        low = min(md_runs, key=lambda r: r[key])
        floors.append(
            {
                "floor": label,
                "status": "PASS" if low[key] >= FLOOR_SKIN_SPEEDUP else "FAIL",
                "detail": f"worst {low[key]:.1f}x at {low['n_atoms']} atoms "
                f"({low['verlet_builds']} builds in {low['n_steps']} steps)",
            }
        )
    return floors


def environment() -> Dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    # The compiled op changes often: identify the exact library that was timed.
    library = mlff._ops.library_path()
    with open(library, "rb") as handle:
        library_sha = hashlib.sha256(handle.read()).hexdigest()[:12]
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "mlff": getattr(mlff, "__version__", "unknown"),
        "mlff_library": library,
        "mlff_library_sha256": library_sha,
        "vesin": vesin.__version__,
        "matscipy": matscipy.__version__,
        "ase": ase.__version__,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
    }


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Single-thread CPU benchmark of mlff.neighbors.neighbor_list against "
        "vesin, matscipy and ASE, plus Verlet-skin reuse over an MD-like sequence.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"only {QUICK_SIZES} atoms, cutoff {QUICK_CUTOFFS[0]:g}, fewer repeats, "
                        "one MD size (the demo; seconds)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"target atom counts, rounded to whole water molecules (default: {DEFAULT_SIZES})")
    parser.add_argument("--cutoffs", type=float, nargs="+", default=None,
                        help=f"cutoffs in Angstrom (default: {DEFAULT_CUTOFFS})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per library and case (default: 100 at 200 atoms down to 5 at "
                        "100k; a third of that with --quick)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="at most this many seconds of timed calls per library and case, but at "
                        "least one call; 0: no limit (default: %(default)s)")
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS),
                        help="peer libraries to compare with (default: all)")
    parser.add_argument("--ase-max-atoms", type=int, default=0,
                        help="skip ASE above this many atoms; 0: never skip (default: %(default)s)")
    parser.add_argument("--check-max-atoms", type=int, default=20000,
                        help="compare full (i, j, S) sets, not only pair counts, up to this many atoms "
                        "(default: %(default)s)")
    parser.add_argument("--md-sizes", type=int, nargs="*", default=None,
                        help="atom counts of the MD-like sequence; none to skip it "
                        "(default: 1536 12288; with --quick: 1536)")
    parser.add_argument("--md-steps", type=int, default=100,
                        help="MD steps, i.e. neighbour-list calls, >= 2 (default: %(default)s)")
    parser.add_argument("--md-step", type=float, default=0.015,
                        help="rms displacement per step in Angstrom (default: %(default)s)")
    parser.add_argument("--md-memory", type=float, default=10.0,
                        help="velocity correlation time in steps; 0: uncorrelated random walk "
                        "(default: %(default)s)")
    parser.add_argument("--md-cutoff", type=float, default=5.0,
                        help="cutoff of the MD-like sequence in Angstrom (default: %(default)s)")
    parser.add_argument("--md-skin", type=float, default=1.0,
                        help="VerletNeighborList skin in Angstrom (default: %(default)s)")
    parser.add_argument("--md-repeats", type=int, default=3,
                        help="repeats of the whole sequence, median reported; 1 with --quick "
                        "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the water boxes and displacements (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write all results to PATH")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.cutoffs is None:
        args.cutoffs = QUICK_CUTOFFS if args.quick else DEFAULT_CUTOFFS
    if args.md_steps < 2:
        parser.error("--md-steps must be at least 2")
    if args.md_sizes is None:
        args.md_sizes = [1536] if args.quick else [1536, 12288]
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    env = environment()
    print("mlff neighbour-list benchmark (CPU, 1 thread, float64, periodic water boxes)")
    print(
        f"  {env['cpu']}; python {env['python']}, torch {env['torch']} "
        f"({env['torch_threads']} thread), mlff {env['mlff']}, vesin {env['vesin']}, "
        f"matscipy {env['matscipy']}, ase {env['ase']}"
    )
    print(f"  mlff op library {env['mlff_library']} (sha256 {env['mlff_library_sha256']})")
    print(f"  {env['cpu_count']} CPUs, 1-min load average {env['load_average_at_start']:.2f} at start "
          "(timings are only trustworthy on an otherwise idle machine)")
    print(f"  sizes {args.sizes}, cutoffs {args.cutoffs}, budget {args.budget:g} s per library and case")
    print()

    warnings: List[str] = []
    cases = []
    t_start = time.perf_counter()
    for n_target in args.sizes:
        for cutoff in args.cutoffs:
            case = bench_case(n_target, cutoff, args, warnings)
            cases.append(case)
            if not args.quick:
                print(
                    f"  done {case['n_atoms']} atoms, rc {cutoff:g} "
                    f"({time.perf_counter() - t_start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )

    print("One-shot full neighbour list with shifts: median time per call; peer/mlff > 1 means mlff is faster")
    print_table(cases)
    pair_check = "counts and full (i, j, S) sets" if any(c["pair_sets_compared"] for c in cases) else "counts"
    print(f"  pair {pair_check} checked against mlff for every peer and case: "
          + ("all agree" if not warnings else "MISMATCHES, see warnings"))
    print()
    print("CPU time per call from getrusage (system time is mostly page faults on fresh memory)")
    print_cpu_table(cases)
    print()

    md_runs = [bench_md(n, args, warnings) for n in args.md_sizes]
    if md_runs:
        print(
            f"MD-like sequence: {args.md_steps} steps, neighbor_list every step vs "
            f"VerletNeighborList(cutoff, skin={args.md_skin:g}); total time of all steps"
        )
        print_md_table(md_runs)
        print()

    for message in warnings:
        print(f"WARNING: {message}")
    if warnings:
        print()

    floors = evaluate_floors(cases, md_runs)
    print("Floors")
    for floor in floors:
        print(f"  [{floor['status']}] {floor['floor']}: {floor['detail']}")
    env["load_average_at_end"] = os.getloadavg()[0]
    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s, "
          f"1-min load average {env['load_average_at_end']:.2f} at the end")

    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(directory, exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "environment": env,
                    "arguments": vars(args),
                    "cases": cases,
                    "md": md_runs,
                    "floors": floors,
                    "warnings": warnings,
                },
                handle,
                indent=2,
            )
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
