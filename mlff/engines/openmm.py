"""OpenMM forces for deployed mlff potentials.

A deployed file (``mlff deploy``) becomes one ``openmm.Force`` that adds the potential's energy
and forces to a System, through one of two backends:

``"python"`` (default)
    An ``openmm.PythonForce`` (OpenMM >= 8.6) calling :class:`PythonForceCompute`; works with
    any torch. The callable keeps the potential file's bytes and loads the model lazily, so that
    the Force survives ``copy.deepcopy``, pickling and ``XmlSerializer`` round trips (OpenMM
    pickles the callable) and a deserialised System needs no file. ML on a subset of atoms uses
    ``PythonForce.setParticles``; the neighbour list is reused across steps
    (:class:`mlff.neighbors.VerletNeighborList`).

``"torch"``
    An openmm-torch ``TorchForce`` running :class:`TorchForceModule`, a TorchScript module that
    embeds the deployed potential and a Verlet neighbour list: the Force needs nothing but
    ``import mlff`` (for ``torch.ops.mlff``) in the process that creates the Context. The PyPI
    openmm-torch 1.5 loads only with torch 2.9.* (see ``../shared/docs/environment.md``), and with
    OpenMM 8.6 it crashes (segmentation fault) when a TorchForce is deserialised or copied
    (``XmlSerializer.deserialize``, ``copy.deepcopy``, ``createMixedSystem(interpolate=True)``):
    it was built against older OpenMM headers. Serialising works.

Units: OpenMM works in nm, kJ/mol and kJ/mol/nm, mlff in Angstrom, eV and eV/Angstrom; the
conversion happens here only, through :data:`mlff.units.EV_TO_KJ_PER_MOL` and
:data:`mlff.units.NM_TO_ANGSTROM`. Periodic boxes come from OpenMM at every evaluation (the
State's box vectors, or TorchForce's box argument), so a ``MonteCarloBarostat`` works; OpenMM's
box vectors are rows, as mlff's cell.

The energy does not depend on the order in which ML atoms are given: the subset is sorted
before use, so any permutation builds the same Force.
"""

import functools
import io
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import torch  # noqa: I001  (torch before openmm: see ../shared/docs/environment.md)

import numpy as np
import openmm
import openmm.app
import openmm.unit
from torch import Tensor

from mlff.engines.allocator import retain_freed_memory
from mlff.export.files import load_potential
from mlff.neighbors import VerletNeighborList
from mlff.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

#: The backends :func:`create_force` accepts.
BACKENDS = ("python", "torch")

#: eV/Angstrom -> kJ/mol/nm.
FORCE_TO_KJ_PER_MOL_NM = EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM


def create_force(
    topology: openmm.app.Topology,
    potential_path: str,
    atoms: Optional[Sequence[int]] = None,
    backend: str = "python",
    force_group: int = 0,
    device: str = "cpu",
    dtype: Optional[torch.dtype] = None,
    skin: float = 1.0,
    periodic: Optional[bool] = None,
) -> openmm.Force:
    """An OpenMM Force computing a deployed mlff potential on (a subset of) a Topology's atoms.

    Parameters
    ----------
    topology : openmm.app.Topology
        Atomic numbers come from its elements (every ML atom needs one).
    potential_path : str
        A deployed potential file (``mlff deploy``).
    atoms : sequence of int, optional
        Indices of the atoms the potential acts on (default: all). Their order does not matter;
        interactions with the other atoms are left to the rest of the System.
    backend : {"python", "torch"}
        ``"python"``: ``openmm.PythonForce`` (any torch). ``"torch"``: openmm-torch ``TorchForce``
        (needs an ``openmmtorch`` that loads with this torch; see the module docstring).
    force_group : int
        OpenMM force group of the new Force.
    device : str
        Where the python backend evaluates ("cpu", "cuda", ...). A TorchForce runs where its
        OpenMM platform runs (openmm-torch moves the module there).
    dtype : torch.dtype, optional
        Evaluate in this dtype (default: the potential's own).
    skin : float
        Verlet skin, Angstrom, for reusing the neighbour list between steps (0: rebuild always).
    periodic : bool, optional
        Whether the potential sees the periodic box (default: whether the Topology has box
        vectors).

    Returns
    -------
    openmm.Force : a ``PythonForce`` or ``TorchForce``, not yet added to any System

    Notes
    -----
    Creating a Force keeps freed memory in the process between steps
    (:func:`mlff.engines.allocator.retain_freed_memory`): without it a TorchForce step spent a
    quarter of its time in page faults.

    Raises
    ------
    ValueError
        Unknown backend, bad atom indices, atoms without element, or elements the potential
        was not trained for.
    RuntimeError
        ``backend="torch"`` where openmm-torch cannot be imported or loaded.
    """
    if backend not in BACKENDS:
        raise ValueError(f"create_force: backend must be one of {BACKENDS}, got {backend!r}")
    retain_freed_memory()
    if backend == "torch":
        openmmtorch_or_error()  # before any work: say at once why it cannot be used
    if periodic is None:
        periodic = topology.getPeriodicBoxVectors() is not None
    selected = _selected_atoms(topology, atoms)
    module = load_potential(os.fspath(potential_path), device="cpu" if backend == "torch" else device)
    if dtype is not None:
        module = module.to(dtype)
    numbers = _atomic_numbers(topology, selected, [int(z) for z in module.species], os.fspath(potential_path))
    subset = None if atoms is None else selected
    if backend == "torch":
        force = _torch_force(module, subset, numbers, periodic, skin)
    else:
        with open(potential_path, "rb") as handle:
            compute = PythonForceCompute(handle.read(), numbers, periodic, device=device, dtype=dtype, skin=skin)
        compute._module = module  # already loaded: reuse it (never pickled)
        force = openmm.PythonForce(compute)
        force.setUsesPeriodicBoundaryConditions(periodic)
        if subset is not None:
            force.setParticles(subset)
    force.setForceGroup(force_group)
    force.setName("mlff")
    return force


def openmmtorch_or_error():
    """Import openmm-torch, or raise RuntimeError saying why it cannot be used.

    When ``openmm`` was imported before ``torch`` (so that OpenMM's plugin loader could not
    resolve torch's CUDA libraries), the openmm-torch plugins are loaded again now that torch is
    in the process.
    """
    hint = (
        "use backend='python' (openmm.PythonForce, which works with any torch) instead. The PyPI "
        "openmm-torch 1.5 links CUDA 12 libraries of torch and runs only with torch 2.9.* "
        f"(this process has torch {torch.__version__})"
    )
    try:
        import openmmtorch
    except Exception as error:  # ImportError, or OSError from its shared libraries
        raise RuntimeError(f"openmm-torch cannot be imported ({type(error).__name__}: {error}); {hint}") from error
    failures = _torch_plugin_failures()
    if failures:
        raise RuntimeError(f"openmm-torch's OpenMM plugin does not load ({failures[0]}); {hint}")
    return openmmtorch


@functools.lru_cache(maxsize=None)
def torch_force_survives_copy() -> bool:
    """Whether a TorchForce can be copied (``XmlSerializer.clone``) in this installation.

    The PyPI openmm-torch 1.5 was built against OpenMM headers older than 8.6, whose
    ``SerializationNode`` changed: deserialising a TorchForce then crashes the process. This
    tries it once, in a child process.
    """
    probe = (
        "import copy, torch, openmm, openmmtorch\n"
        "class Zero(torch.nn.Module):\n"
        "    def forward(self, positions):\n"
        "        return positions.sum() * 0.0\n"
        "copy.deepcopy(openmmtorch.TorchForce(torch.jit.script(Zero())))\n"
    )
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


#: openmm-torch plugin libraries loaded here after OpenMM's own attempt had failed.
_RELOADED_PLUGINS = set()


def _torch_plugin_failures() -> List[str]:
    """Failures of openmm-torch's Reference plugin that persist after retrying them.

    OpenMM loads its plugins when ``openmm`` is imported; if that happened before ``import
    torch``, openmm-torch's plugins could not find torch's CUDA libraries. With torch now in the
    process, loading them again usually works.
    """
    prefix = "Error loading library "
    remaining = []
    for text in openmm.Platform.getPluginLoadFailures():
        if not text.startswith(prefix) or "Torch" not in text or "OpenCL" in text:
            continue
        library = text[len(prefix) :].split(": ", 1)[0]
        if library in _RELOADED_PLUGINS:
            continue
        try:
            openmm.Platform.loadPluginLibrary(library)
            _RELOADED_PLUGINS.add(library)
        except Exception as error:
            if "TorchReference" in library:  # the one every machine needs; CUDA ones need a GPU
                remaining.append(f"{text}; loading it again after importing torch: {error}")
    return remaining


def _torch_force(module, subset: Optional[List[int]], numbers: List[int], periodic: bool, skin: float):
    openmmtorch = openmmtorch_or_error()
    scripted = torch.jit.script(TorchForceModule(module, numbers, subset, periodic, skin))
    force = openmmtorch.TorchForce(scripted)
    force.setOutputsForces(True)
    force.setUsesPeriodicBoundaryConditions(periodic)
    return force


def _selected_atoms(topology: openmm.app.Topology, atoms: Optional[Sequence[int]]) -> List[int]:
    n_atoms = topology.getNumAtoms()
    if atoms is None:
        return list(range(n_atoms))
    selected = sorted(int(i) for i in atoms)
    if not selected:
        raise ValueError("create_force: the list of ML atoms is empty")
    if len(set(selected)) != len(selected):
        raise ValueError("create_force: the list of ML atoms contains duplicates")
    if selected[0] < 0 or selected[-1] >= n_atoms:
        raise ValueError(f"create_force: ML atom indices must lie in [0, {n_atoms}), got {selected[0]}..{selected[-1]}")
    return selected


def _atomic_numbers(topology: openmm.app.Topology, selected: List[int], species: List[int], path: str) -> List[int]:
    all_atoms = list(topology.atoms())
    numbers = []
    for index in selected:
        element = all_atoms[index].element
        if element is None:
            raise ValueError(f"atom {index} ({all_atoms[index].name}) of the Topology has no element; mlff needs one")
        numbers.append(int(element.atomic_number))
    unknown = sorted(set(numbers) - set(species))
    if unknown:
        symbols = ", ".join(f"{openmm.app.Element.getByAtomicNumber(z).symbol} (Z={z})" for z in unknown)
        known = ", ".join(openmm.app.Element.getByAtomicNumber(z).symbol for z in species)
        raise ValueError(f"the Topology's ML atoms contain {symbols}, which {path} was not trained for (it knows {known})")
    return numbers


class TorchForceModule(torch.nn.Module):
    """OpenMM's units around a deployed potential, for openmm-torch's ``TorchForce``.

    ``forward(positions, boxvectors)`` takes all particles' positions (nm) and, when periodic,
    the box vectors (nm, rows), evaluates the potential on the ML atoms and returns the energy
    (kJ/mol) and forces on all particles (kJ/mol/nm, zero outside the subset), in the dtype of
    ``positions``.

    Parameters
    ----------
    potential : torch.jit.ScriptModule
        A loaded deployed potential (:func:`mlff.load_potential`).
    atomic_numbers : list of int
        Of the ML atoms, in the order of ``atoms``.
    atoms : list of int, optional
        Indices of the ML atoms among all particles (default: all).
    periodic : bool
    skin : float
        Verlet skin of the neighbour list kept between calls, Angstrom.
    """

    subset: bool
    periodic: bool
    length_scale: float
    energy_scale: float
    force_scale: float

    def __init__(
        self,
        potential: torch.nn.Module,
        atomic_numbers: List[int],
        atoms: Optional[List[int]] = None,
        periodic: bool = False,
        skin: float = 1.0,
    ):
        super().__init__()
        self.potential = potential
        self.register_buffer("atomic_numbers", torch.tensor(atomic_numbers, dtype=torch.long))
        self.register_buffer("atoms", torch.tensor(atoms if atoms is not None else [], dtype=torch.long))
        # the model's dtype travels with the module through .to(...)
        dtype = potential.potential.scale.dtype
        self.register_buffer("dtype_probe", torch.zeros(0, dtype=dtype))
        self.subset = atoms is not None
        self.periodic = periodic
        self.neighbors = VerletNeighborList(float(potential.cutoff), skin)
        self.length_scale = NM_TO_ANGSTROM
        self.energy_scale = EV_TO_KJ_PER_MOL
        self.force_scale = FORCE_TO_KJ_PER_MOL_NM

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Energy (kJ/mol, scalar) and forces (n_particles, 3) kJ/mol/nm from positions in nm."""
        dtype = self.dtype_probe.dtype
        selected = positions.index_select(0, self.atoms) if self.subset else positions
        coordinates = (selected.detach() * self.length_scale).to(dtype)  # [n_ml, 3] Angstrom
        if self.periodic:
            if boxvectors is None:
                raise RuntimeError("TorchForceModule: periodic, but OpenMM passed no box vectors")
            cell = (boxvectors.detach() * self.length_scale).to(dtype)
            pbc = torch.ones(3, dtype=torch.bool, device=positions.device)
        else:
            cell = torch.zeros(3, 3, dtype=dtype, device=positions.device)
            pbc = torch.zeros(3, dtype=torch.bool, device=positions.device)
        edge_index, cell_shifts = self.neighbors(coordinates, cell, pbc)
        outputs = self.potential(coordinates, self.atomic_numbers, cell, pbc, edge_index, cell_shifts)
        energy = (outputs["energy"].sum() * self.energy_scale).to(positions.dtype)
        forces = (outputs["forces"] * self.force_scale).to(positions.dtype)
        if self.subset:
            forces = torch.zeros_like(positions).index_copy(0, self.atoms, forces)
        return energy, forces


class PythonForceCompute:
    """The callable of an ``openmm.PythonForce``: a deployed potential in OpenMM's units.

    Picklable by design (OpenMM pickles it to copy or serialise the Force): its state is the
    potential file's bytes and the settings; the model and the neighbour list are rebuilt
    lazily after unpickling.

    Parameters
    ----------
    potential_bytes : bytes
        Contents of a deployed potential file.
    atomic_numbers : list of int
        Of the atoms it sees (the PythonForce's particles, in their order).
    periodic : bool
        Use the State's periodic box vectors.
    device : str
    dtype : torch.dtype, optional
        Evaluate in this dtype (default: the potential's own).
    skin : float
        Verlet skin, Angstrom.
    """

    def __init__(
        self,
        potential_bytes: bytes,
        atomic_numbers: Sequence[int],
        periodic: bool,
        device: str = "cpu",
        dtype: Optional[torch.dtype] = None,
        skin: float = 1.0,
    ):
        self.potential_bytes = bytes(potential_bytes)
        self.atomic_numbers = [int(z) for z in atomic_numbers]
        self.periodic = bool(periodic)
        self.device = str(device)
        self.dtype = dtype
        self.skin = float(skin)
        self._module: Optional[torch.nn.Module] = None
        self.neighbors: Optional[VerletNeighborList] = None
        self._numbers = torch.zeros(0, dtype=torch.long)
        self._positions_buffer = np.empty((0, 3), dtype=np.float64)

    def __getstate__(self) -> Dict:
        return {
            "potential_bytes": self.potential_bytes,
            "atomic_numbers": self.atomic_numbers,
            "periodic": self.periodic,
            "device": self.device,
            "dtype": None if self.dtype is None else str(self.dtype).replace("torch.", ""),
            "skin": self.skin,
        }

    def __setstate__(self, state: Dict) -> None:
        dtype = None if state["dtype"] is None else getattr(torch, state["dtype"])
        self.__init__(
            state["potential_bytes"], state["atomic_numbers"], state["periodic"], state["device"], dtype, state["skin"]
        )

    @property
    def module(self) -> torch.nn.Module:
        """The deployed potential, loaded on first use."""
        if self._module is None:
            retain_freed_memory()
            self._module = load_potential_bytes(self.potential_bytes, self.device)
            if self.dtype is not None:
                self._module = self._module.to(self.dtype)
        return self._module

    def __call__(self, state: openmm.State) -> Tuple[float, np.ndarray]:
        """Energy (kJ/mol) and forces ((n, 3), kJ/mol/nm) at the State's positions and box."""
        module = self.module
        device = torch.device(self.device)
        dtype = module.potential.scale.dtype
        if self.neighbors is None:
            self.neighbors = VerletNeighborList(float(module.cutoff), self.skin)
            self._numbers = torch.tensor(self.atomic_numbers, dtype=torch.long, device=device)
        nanometer = openmm.unit.nanometer
        positions_nm = torch.from_numpy(self._positions_nm(state))  # [n, 3] nm, float64, no copy
        positions = (positions_nm * NM_TO_ANGSTROM).to(device=device, dtype=dtype)
        if self.periodic:
            box = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(nanometer))
            cell = torch.as_tensor(box * NM_TO_ANGSTROM, dtype=dtype, device=device)
            pbc = torch.ones(3, dtype=torch.bool, device=device)
        else:
            cell = torch.zeros(3, 3, dtype=dtype, device=device)
            pbc = torch.zeros(3, dtype=torch.bool, device=device)
        edge_index, cell_shifts = self.neighbors(positions, cell, pbc)
        # no re-specialisation by TorchScript's profiling executor when the edge count changes
        with torch.jit.optimized_execution(False):
            outputs = module(positions, self._numbers, cell, pbc, edge_index, cell_shifts)
        energy = float(outputs["energy"].detach().sum().item()) * EV_TO_KJ_PER_MOL
        forces = outputs["forces"].detach().cpu().to(torch.float64).numpy() * FORCE_TO_KJ_PER_MOL_NM
        return energy, forces

    def _positions_nm(self, state: openmm.State) -> np.ndarray:
        """The State's positions, (n, 3) nm, float64.

        ``State.getPositions(asNumpy=True)`` calls ``dir(state)`` and wraps the array in a
        Quantity: 0.3 ms per step, 5% of a small molecule's step. The array is read directly
        into a buffer kept between steps where the SWIG method behind it exists (OpenMM 8).
        """
        read = getattr(state, "_getVectorAsNumpy", None)
        if read is None:
            return np.asarray(state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer), dtype=np.float64)
        n_particles = state._getNumParticles()
        if self._positions_buffer.shape[0] != n_particles:
            self._positions_buffer = np.empty((n_particles, 3), dtype=np.float64)
        read(openmm.State.Positions, self._positions_buffer)
        return self._positions_buffer


def load_potential_bytes(data: bytes, device: str = "cpu") -> torch.jit.ScriptModule:
    """:func:`mlff.load_potential` for a file's contents (checked the same way)."""
    handle, path = tempfile.mkstemp(suffix=".pt", prefix="mlff-openmm-")
    try:
        with io.FileIO(handle, "wb") as stream:
            stream.write(data)
        return load_potential(path, device=device)
    finally:
        os.remove(path)
