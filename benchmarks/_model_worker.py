"""Worker of ``benchmarks/models.py``: times energy + forces of ONE model on ONE structure.

It runs in a fresh process for every case, so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that case alone. The same file
serves all three environments:

* backend ``mlff`` runs in mlff's environment (``.venv``): ``mlff.models.build`` wrapped in
  ``mlff.Potential``, inputs from ``mlff.graph.from_atoms`` (mlff's compiled neighbour list);
* backends ``mace`` and ``schnetpack`` run in the peers' environment (``.venv-peers``, made by
  ``benchmarks/setup_peers.sh``): mace-torch's ``MACE`` fed the way its ASE calculator feeds
  it (``mace.data.config_from_atoms`` -> ``AtomicData.from_config``, matscipy neighbour list ->
  ``torch_geometric.Batch``), and schnetpack's ``NeuralNetworkPotential`` fed by its
  ``AtomsConverter`` with a ``MatScipyNeighborList`` (what ``SpkCalculator`` does);
* backend ``nequip`` runs in nequip's environment (``.venv-nequip``, made by
  ``benchmarks/setup_nequip.sh``): nequip's ``NequIPGNNModel`` in its ASE calculator
  ``NequIPCalculator``, fed by ``nequip.data.from_ase`` and the calculator's transforms (atom
  types, matscipy neighbour list).

Only the backend's own packages are imported, so that no environment needs another's.

Usage (done by ``models.py``)::

    python benchmarks/_model_worker.py SPEC.json

``SPEC.json`` names the backend, model family, hyperparameters, dtype, thread count, the
structure (an ``.npz`` with ``positions`` (n, 3) Angstrom, ``numbers`` (n,), ``cell`` (3, 3)
Angstrom, ``pbc`` (3,)), an optional small warm-up structure, the number of warm-up and timed
calls, a time budget, and the path of the JSON file the results are written to.

One *call* is what a user pays per MD step without neighbour-list reuse:

    t0 -> inputs = prepare(atoms)      # neighbour list + conversion to the model's input type
    t1 -> energy, forces = evaluate(inputs)   # forward + backward, forces copied to numpy
    t2

``prepare`` = t1 - t0, ``model`` = t2 - t1, ``total`` = t2 - t0.
"""

import json
import os
import sys

with open(sys.argv[1]) as _file:
    SPEC = json.load(_file)

# The thread count must be in the environment before numpy or torch is imported.
for _variable in (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
):
    os.environ[_variable] = str(SPEC["threads"])

import gc  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(int(SPEC["threads"]))

import numpy as np  # noqa: E402
import ase  # noqa: E402

warnings.filterwarnings("ignore")

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def current_rss_mb() -> float:
    """Resident set size of this process now, MB (from /proc/self/statm)."""
    with open("/proc/self/statm") as file:
        pages = int(file.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def load_atoms(path: str) -> ase.Atoms:
    data = np.load(path)
    return ase.Atoms(
        numbers=data["numbers"], positions=data["positions"], cell=data["cell"], pbc=data["pbc"].astype(bool)
    )


def count_parameters(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# --------------------------------------------------------------------------------------------
# Backends: build(hyper, dtype); prepare(atoms) -> inputs; evaluate(inputs) -> (energy, forces)
# --------------------------------------------------------------------------------------------


class MlffBackend:
    """mlff's model of family ``model``, eager, wrapped in ``mlff.Potential``."""

    def __init__(self, family: str, hyper: dict, dtype: torch.dtype):
        import mlff
        import mlff.graph
        import mlff.models

        self.graph_module = mlff.graph
        overrides = dict(hyper)
        for key, value in overrides.items():
            if isinstance(value, list):
                overrides[key] = tuple(value)
        model = mlff.models.build(family, **overrides)
        # parameters frozen, as in every deployed file and engine of mlff (mlff.export)
        self.potential = mlff.Potential(model).to(dtype).eval().requires_grad_(False)
        self.dtype = dtype
        self.cutoff = self.potential.cutoff
        self.n_parameters = count_parameters(self.potential)
        self.config = repr(model.config)
        self.versions = {"torch": torch.__version__, "mlff": getattr(mlff, "__version__", "?")}
        try:
            import e3nn

            self.versions["e3nn"] = e3nn.__version__
        except ImportError:
            pass

    def prepare(self, atoms):
        return self.graph_module.from_atoms(atoms, cutoff=self.cutoff, dtype=self.dtype)

    def n_edges(self, inputs) -> int:
        return int(inputs.edge_index.shape[1])

    def evaluate(self, inputs):
        out = self.potential(inputs, compute_forces=True, compute_stress=False)
        return float(out["energy"].sum()), out["forces"].detach().cpu().numpy()

    def forward_only(self, inputs):
        with torch.no_grad():
            return self.potential.model(inputs)["energy"]


class MaceBackend:
    """mace-torch's ``MACE``, inputs as built by ``mace.calculators.MACECalculator``."""

    def __init__(self, family: str, hyper: dict, dtype: torch.dtype):
        import mace  # first: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, which e3nn 0.4.4 needs
        from e3nn import o3
        from mace import data, modules
        from mace.tools import torch_geometric, utils

        assert family == "mace", family
        # MACECalculator sets the process-wide default dtype; AtomicData.from_config builds its
        # tensors in it.
        torch.set_default_dtype(dtype)
        self.data = data
        self.torch_geometric = torch_geometric
        species = list(hyper["species"])
        k = hyper["n_channels"]
        hidden = "+".join(f"{k}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(hyper["hidden_l_max"] + 1))
        self.model = modules.MACE(
            r_max=hyper["cutoff"],
            num_bessel=hyper["n_basis"],
            num_polynomial_cutoff=hyper["envelope_exponent"],
            max_ell=hyper["l_max"],
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            # mlff's first layer has no self-connection (as in the MACE paper)
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=hyper["n_interactions"],
            num_elements=len(species),
            hidden_irreps=o3.Irreps(hidden),
            MLP_irreps=o3.Irreps(f"{hyper['readout_hidden']}x0e"),
            atomic_energies=np.zeros(len(species)),
            avg_num_neighbors=hyper["avg_num_neighbors"],
            atomic_numbers=species,
            correlation=hyper["correlation"],
            gate=torch.nn.functional.silu,
            radial_MLP=list(hyper["radial_hidden"]),
        )
        # parameters frozen, as MACECalculator does
        self.model = self.model.to(dtype).eval().requires_grad_(False)
        self.z_table = utils.AtomicNumberTable(species)
        self.cutoff = float(hyper["cutoff"])
        self.heads = getattr(self.model, "heads", ["Default"])
        self.n_parameters = count_parameters(self.model)
        import e3nn

        self.versions = {"torch": torch.__version__, "mace-torch": mace.__version__, "e3nn": e3nn.__version__}

    def prepare(self, atoms):
        # MACECalculator._atoms_to_batch + _clone_batch + to_dict
        config = self.data.config_from_atoms(atoms, key_specification=self.data.KeySpecification())
        graph = self.data.AtomicData.from_config(config, z_table=self.z_table, cutoff=self.cutoff, heads=self.heads)
        batch = self.torch_geometric.Batch.from_data_list([graph]).clone()
        return batch.to_dict()

    def n_edges(self, inputs) -> int:
        return int(inputs["edge_index"].shape[1])

    def evaluate(self, inputs):
        out = self.model(inputs, training=False, compute_force=True, compute_stress=False)
        return float(out["energy"].sum()), out["forces"].detach().cpu().numpy()

    def forward_only(self, inputs):
        with torch.no_grad():
            return self.model(inputs, training=False, compute_force=False)["energy"]


class SchnetpackBackend:
    """schnetpack's ``SchNet`` or ``PaiNN`` in a ``NeuralNetworkPotential``, inputs from
    ``AtomsConverter`` with a ``MatScipyNeighborList`` (as ``SpkCalculator`` does)."""

    def __init__(self, family: str, hyper: dict, dtype: torch.dtype):
        import typing

        import torch.utils.data.dataloader as dataloader

        # schnetpack 2.1.1 imports the private name T_co, which torch 2.9 no longer defines
        if not hasattr(dataloader, "T_co"):
            dataloader.T_co = typing.TypeVar("T_co", covariant=True)
        import schnetpack as spk

        cutoff = float(hyper["cutoff"])
        cutoff_fn = spk.nn.CosineCutoff(cutoff)
        if family == "schnet":
            representation = spk.representation.SchNet(
                n_atom_basis=hyper["n_features"],
                n_interactions=hyper["n_interactions"],
                radial_basis=spk.nn.GaussianRBF(n_rbf=hyper["n_basis"], cutoff=cutoff),
                cutoff_fn=cutoff_fn,
                n_filters=hyper["n_filters"],
            )
        elif family == "painn":
            representation = spk.representation.PaiNN(
                n_atom_basis=hyper["n_features"],
                n_interactions=hyper["n_interactions"],
                radial_basis=spk.nn.BesselRBF(n_rbf=hyper["n_basis"], cutoff=cutoff),
                cutoff_fn=cutoff_fn,
            )
        else:
            raise ValueError(f"schnetpack backend: no family {family!r}")
        dtype_name = "float64" if dtype == torch.float64 else "float32"
        self.model = spk.model.NeuralNetworkPotential(
            representation=representation,
            input_modules=[spk.atomistic.PairwiseDistances()],
            output_modules=[
                spk.atomistic.Atomwise(n_in=hyper["n_features"], output_key="energy"),
                spk.atomistic.Forces(energy_key="energy", force_key="forces"),
            ],
            input_dtype_str=dtype_name,
        )
        # parameters frozen as on the other sides (an MD step needs no parameter gradients)
        self.model = self.model.to(dtype).eval().requires_grad_(False)
        self.converter = spk.interfaces.AtomsConverter(
            neighbor_list=spk.transform.MatScipyNeighborList(cutoff=cutoff), dtype=dtype
        )
        self.n_parameters = count_parameters(self.model)
        self.versions = {"torch": torch.__version__, "schnetpack": spk.__version__}

    def prepare(self, atoms):
        return self.converter(atoms)

    def n_edges(self, inputs) -> int:
        return int(inputs["_idx_i"].shape[0])

    def evaluate(self, inputs):
        out = self.model(inputs)
        return float(out["energy"].sum()), out["forces"].detach().cpu().numpy()

    def forward_only(self, inputs):
        # the Forces module needs autograd; time the representation and readout only
        model = self.model
        inputs = model.initialize_derivatives(inputs) if hasattr(model, "initialize_derivatives") else inputs
        for module in model.input_modules:
            inputs = module(inputs)
        inputs = model.representation(inputs)
        return model.output_modules[0](inputs)["energy"]


def nequip_arguments(hyper: dict, dtype: torch.dtype) -> dict:
    """Arguments of ``nequip.model.NequIPGNNModel`` for mlff's NequIP hyperparameters ``hyper``
    (``mlff.models.nequip.NequIPConfig`` names; cutoff in Angstrom), in model dtype ``dtype``.

    The radial MLP ``n_basis -> radial_hidden... -> weights`` becomes ``radial_mlp_depth`` hidden
    layers of ``radial_mlp_width`` (all hidden sizes must be equal); mlff's readout (two linear
    maps of the last scalars, ``n_channels -> readout_hidden -> 1``) is nequip's readout MLP
    with one hidden layer and no nonlinearity. Every other argument keeps nequip's default, in
    particular ``type_embed_num_features = num_features`` and no per-type energy scale or shift.
    """
    from ase.data import chemical_symbols

    widths = sorted(set(hyper["radial_hidden"]))
    if len(widths) != 1:
        raise ValueError(f"nequip's radial MLP has one width for all hidden layers, got {hyper['radial_hidden']}")
    return dict(
        seed=0,
        model_dtype="float64" if dtype == torch.float64 else "float32",
        type_names=[chemical_symbols[z] for z in hyper["species"]],
        r_max=float(hyper["cutoff"]),
        num_layers=hyper["n_interactions"],
        l_max=hyper["l_max"],
        parity=bool(hyper["parity"]),
        num_features=hyper["n_channels"],
        radial_mlp_depth=len(hyper["radial_hidden"]),
        radial_mlp_width=widths[0],
        num_bessels=hyper["n_basis"],
        polynomial_cutoff_p=hyper.get("envelope_exponent", 6),
        avg_num_neighbors=float(hyper["avg_num_neighbors"]),
        readout_mlp_hidden_layers_depth=1,
        readout_mlp_hidden_layers_width=hyper["readout_hidden"],
        readout_mlp_nonlinearity=None,
    )


class NequipBackend:
    """nequip's own NequIP (``nequip.model.NequIPGNNModel``), eager, in a
    ``nequip.integrations.ase.NequIPCalculator``: inputs from ``nequip.data.from_ase`` and the
    calculator's transforms (``ChemicalSpeciesToAtomTypeMapper``, then ``NeighborListTransform``
    with nequip's default matscipy neighbour list), as its ``from_compiled_model`` and
    ``_from_saved_model`` loaders set them up; outputs copied to numpy as ``calculate`` does.

    nequip keeps data in float64 whatever the model dtype (positions, cell, shifts, edge vectors
    and lengths); a float32 model casts its edge features to float32 after the Bessel basis and
    spherical harmonics.
    """

    def __init__(self, family: str, hyper: dict, dtype: torch.dtype):
        import e3nn
        import nequip
        from nequip.data import AtomicDataDict
        from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
        from nequip.integrations.ase import NequIPCalculator
        from nequip.model import NequIPGNNModel
        from nequip.utils.global_state import set_global_state

        assert family == "nequip", family
        # what the calculator's loaders do first: float64 default dtype, e3nn's optimisation
        # flags (at e3nn's defaults for torch 2.9), TF32 off (no effect on CPU)
        set_global_state(allow_tf32=False)
        arguments = nequip_arguments(hyper, dtype)
        # parameters frozen as on the other sides (an MD step needs no parameter gradients)
        model = NequIPGNNModel(**arguments).eval().requires_grad_(False)
        type_names = arguments["type_names"]
        transforms = [
            ChemicalSpeciesToAtomTypeMapper(
                model_type_names=type_names, chemical_species_to_atom_type_map={t: t for t in type_names}
            ),
            NeighborListTransform(r_max=arguments["r_max"]),
        ]
        self.calculator = NequIPCalculator(model=model, device="cpu", transforms=transforms)
        self.keys = AtomicDataDict
        self.n_parameters = count_parameters(model)
        self.config = "nequip.model.NequIPGNNModel(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")"
        self.versions = {"torch": torch.__version__, "nequip": nequip.__version__, "e3nn": e3nn.__version__}

    def prepare(self, atoms):
        return self.calculator.atoms_to_data(atoms)

    def n_edges(self, inputs) -> int:
        return int(inputs[self.keys.EDGE_INDEX_KEY].shape[1])

    def evaluate(self, inputs):
        # GraphModel -> ForceStressOutput: energy, forces and (the cell being there) virial
        # and stress from one autograd call
        out = self.calculator.call_model(inputs)
        energy = float(out[self.keys.TOTAL_ENERGY_KEY].detach().sum())
        return energy, out[self.keys.FORCE_KEY].detach().cpu().numpy()

    def forward_only(self, inputs):
        # the energy model inside ForceStressOutput (which needs autograd), on a copy of the
        # dict (its modules write into it)
        energy_model = self.calculator.model.model.func
        with torch.no_grad():
            return energy_model(dict(inputs))[self.keys.TOTAL_ENERGY_KEY]


BACKENDS = {"mlff": MlffBackend, "mace": MaceBackend, "schnetpack": SchnetpackBackend, "nequip": NequipBackend}


# --------------------------------------------------------------------------------------------


MAX_CALLS = 100  # timed calls of one case at most, however short they are
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
N_CPUS = os.cpu_count() or 1


def system_busy_s() -> float:
    """CPU seconds spent busy by the whole machine since boot (all CPUs, /proc/stat)."""
    with open("/proc/stat") as file:
        fields = [int(x) for x in file.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_s() -> float:
    """CPU seconds used by this process (all its threads)."""
    times = os.times()
    return times.user + times.system


def wait_for_quiet(threshold: float, max_wait_s: float, sample_s: float = 0.5) -> float:
    """Sleep until other processes use less than ``threshold`` of the machine's CPUs over a
    ``sample_s`` window, or ``max_wait_s`` has passed; returns the seconds waited."""
    start = time.perf_counter()
    while True:
        busy = system_busy_s()
        time.sleep(sample_s)
        if (system_busy_s() - busy) / (sample_s * N_CPUS) < threshold:
            return time.perf_counter() - start
        if time.perf_counter() - start > max_wait_s:
            return time.perf_counter() - start


def timed_call(backend, atoms):
    """One call; returns (inputs, energy, forces, (prepare, model, total) seconds, foreign load):
    the foreign load is the fraction of the machine's CPU time used by other processes during
    the call."""
    gc.collect()
    busy0, own0 = system_busy_s(), own_cpu_s()
    t0 = time.perf_counter()
    inputs = backend.prepare(atoms)
    t1 = time.perf_counter()
    energy, forces = backend.evaluate(inputs)
    t2 = time.perf_counter()
    foreign = (system_busy_s() - busy0 - (own_cpu_s() - own0)) / ((t2 - t0) * N_CPUS)
    return inputs, energy, forces, (t1 - t0, t2 - t1, t2 - t0), max(foreign, 0.0)


def run(spec: dict) -> dict:
    dtype = DTYPES[spec["dtype"]]
    result: dict = {"ok": False}
    t_start = time.perf_counter()
    backend = BACKENDS[spec["backend"]](spec["family"], spec["hyper"], dtype)
    result["n_parameters"] = backend.n_parameters
    result["versions"] = backend.versions
    if hasattr(backend, "config"):
        result["config"] = backend.config
    result["build_s"] = time.perf_counter() - t_start

    atoms = load_atoms(spec["structure"])
    result["n_atoms"] = len(atoms)
    result["rss_before_mb"] = current_rss_mb()

    # Warm-up: first on the small box (lazy initialisation, dispatcher and allocator caches,
    # e3nn code generation), then, if asked, on the box itself.
    if spec.get("warmup_structure"):
        timed_call(backend, load_atoms(spec["warmup_structure"]))
    for _ in range(int(spec["warmup"])):
        timed_call(backend, atoms)

    # Timed calls. The machine may be shared, and two threads slow down many-fold when another
    # process takes one of the CPUs. So: before the first call and after a disturbed one, wait
    # until other processes leave the CPUs nearly idle, and mark a call "disturbed" when other processes used more than
    # `quiet_threshold` of the machine during it. The statistics use the undisturbed ("clean")
    # calls when there are any. At least `repeats` clean calls are made, and more while their
    # total is under `min_time_s` (short calls vary more); `budget_s` bounds the time of clean
    # calls; `max_wait_s` bounds the time lost to others: waiting plus disturbed calls.
    threshold = float(spec.get("quiet_threshold", 1.0))
    allowance = float(spec.get("max_wait_s", 0.0))
    budget = float(spec["budget_s"])
    repeats = int(spec["repeats"])
    min_time = float(spec.get("min_time_s", 0.0))
    calls = []  # (prepare, model, total, foreign)
    clean_s = lost_s = waited = 0.0
    energy = float("nan")
    forces = None
    n_edges = -1
    while True:
        # wait before the first call and after a disturbed one (a clean call just showed quiet)
        if allowance - lost_s > 0 and (not calls or calls[-1][3] >= threshold):
            w = wait_for_quiet(threshold, allowance - lost_s)
            waited += w
            lost_s += w
        inputs, energy, forces, times, foreign = timed_call(backend, atoms)
        n_edges = backend.n_edges(inputs)
        del inputs
        calls.append(times + (foreign,))
        if foreign < threshold:
            clean_s += times[2]
        else:
            lost_s += times[2]
        clean = [c[2] for c in calls if c[3] < threshold]
        if len(clean) >= repeats and (clean_s >= min_time or len(clean) >= MAX_CALLS):
            break  # enough clean calls, and enough clean time for a stable median
        if clean and clean_s + statistics.median(clean) > budget:
            break  # the next clean call would overrun the budget
        if foreign >= threshold and lost_s >= allowance:
            break  # disturbed, and no time left to wait for a quiet machine
    clean = [c for c in calls if c[3] < threshold]
    used = clean or calls
    prepare = [c[0] for c in used]
    model = [c[1] for c in used]
    total = [c[2] for c in used]
    best = min(range(len(used)), key=lambda i: total[i])

    result.update(
        ok=True,
        n_edges=n_edges,
        prepare_s=prepare,
        model_s=model,
        total_s=total,
        median_prepare_s=statistics.median(prepare),
        median_model_s=statistics.median(model),
        median_total_s=statistics.median(total),
        best_prepare_s=prepare[best],
        best_model_s=model[best],
        best_total_s=total[best],
        all_calls=[list(c) for c in calls],
        n_clean=len(clean),
        disturbed=not clean,
        waited_s=waited,
        peak_rss_mb=peak_rss_mb(),
        energy=energy,
        forces_finite=bool(np.isfinite(forces).all()),
        max_abs_net_force=float(np.abs(forces.sum(axis=0)).max()),
        max_abs_force=float(np.abs(forces).max()),
    )
    result["eval_rss_mb"] = result["peak_rss_mb"] - result["rss_before_mb"]

    if spec.get("profile"):
        if allowance > 0:
            wait_for_quiet(threshold, allowance)
        result["profile"] = profile(backend, atoms, int(spec.get("profile_rows", 30)), int(spec.get("profile_calls", 1)))
    return result


def profile(backend, atoms, rows: int, calls: int = 1) -> dict:
    """torch.profiler table of ``calls`` calls (forward + backward, inputs prepared outside the
    profile), sorted by self CPU time; and the time of one forward pass alone, without grad."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    from torch.profiler import record_function

    inputs = backend.prepare(atoms)
    t0 = time.perf_counter()
    backend.forward_only(inputs)
    forward_s = time.perf_counter() - t0
    prepared = [backend.prepare(atoms) for _ in range(calls)]
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for inputs in prepared:
            with record_function("energy_and_forces"):
                backend.evaluate(inputs)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return {"forward_only_s": forward_s, "table": table, "calls": calls}


def main() -> None:
    output = SPEC["output"]
    try:
        result = run(SPEC)
    except Exception as error:  # reported to the driver, which prints it
        result = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    result["peak_rss_mb"] = result.get("peak_rss_mb", peak_rss_mb())
    with open(output, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
