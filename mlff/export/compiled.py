"""AOTInductor packages (``.pt2``): a deployed potential compiled ahead of time to C++.

The forward pass *and* its derivatives are traced into one flat graph of aten ops (autograd
runs at trace time, so forces, virial and stress are ordinary outputs), exported with a
dynamic number of atoms and edges, and compiled by AOTInductor. One package holds two
compiled models over the same weights, and the metadata as an extra file:

``with_neighbors``
    ``(positions, atomic_numbers, cell, pbc)``; the neighbour list (``torch.ops.mlff``) runs
    inside the compiled graph.
``with_edges``
    ``(positions, atomic_numbers, cell, pbc, edge_index, cell_shifts)``: the caller's list
    (e.g. a Verlet list reused across MD steps).

Both return energy, per-atom energies, forces, virial and stress. :class:`CompiledPotential`
wraps the two behind the call signature of :class:`~mlff.export.deployed.DeployedPotential`.
A compiled graph cannot raise Python errors, so the input checks of
:class:`~mlff.potential.Potential` (finite positions, known elements, no coincident atoms) run
eagerly around it, with the same messages. The package is compiled for one dtype and device.
"""

import json
import zipfile
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mlff.export.deployed import DeployedPotential
from mlff.neighbors import neighbor_list
from mlff.nn.embedding import SpeciesIndex
from mlff.potential import checks as potential_checks
from mlff.potential import rebuilt_copy

MODEL_WITH_NEIGHBORS = "with_neighbors"
MODEL_WITH_EDGES = "with_edges"
#: The outputs of both compiled models, in this order.
OUTPUT_NAMES = ("energy", "node_energy", "forces", "virial", "stress")
#: Tested with torch 2.9.1 and 2.13; older torch lacks the pt2 archive API used here.
MINIMUM_TORCH = (2, 9)


def pt2_support_error() -> Optional[str]:
    """Why this torch cannot write or read mlff ``.pt2`` packages, or None if it can."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    if version < MINIMUM_TORCH:
        return (
            f".pt2 (AOTInductor) potentials need torch >= {MINIMUM_TORCH[0]}.{MINIMUM_TORCH[1]}; this is torch "
            f"{torch.__version__}. Upgrade torch, or deploy to a TorchScript file (.pt) instead"
        )
    return None


def is_pt2_archive(path: str) -> bool:
    """Whether ``path`` is a zip archive in torch's PT2 layout (``<root>/archive_format`` = "pt2")."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.count("/") == 1 and name.endswith("/archive_format"):
                    return archive.read(name).strip() == b"pt2"
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
    return False


def read_pt2_extra_file(path: str, name: str) -> Optional[str]:
    """Text of the extra file ``name`` of a PT2 archive, or None if it has none (no model is loaded)."""
    with zipfile.ZipFile(path) as archive:
        for entry in archive.namelist():
            parts = entry.split("/")
            if len(parts) == 3 and parts[1] == "extra" and parts[2] == name:
                return archive.read(entry).decode("utf-8")
    return None


class _WithDerivatives(torch.nn.Module):
    """What gets traced: a DeployedPotential with all derivatives, outputs as a flat tuple."""

    def __init__(self, deployed: DeployedPotential, with_neighbors: bool):
        super().__init__()
        self.deployed = deployed
        self.with_neighbors = with_neighbors

    def forward(self, *inputs: Tensor):
        if self.with_neighbors:
            positions, atomic_numbers, cell, pbc = inputs
            # the same list the model uses, returned so that the caller can check it afterwards
            edge_index, cell_shifts = neighbor_list(positions, cell, pbc, self.deployed.cutoff)
            outputs = self.deployed(positions, atomic_numbers, cell, pbc, edge_index, cell_shifts, True)
            return tuple(outputs[name] for name in OUTPUT_NAMES) + (edge_index, cell_shifts)
        outputs = self.deployed(*inputs, compute_stress=True)
        return tuple(outputs[name] for name in OUTPUT_NAMES)


def _example_inputs(cutoff: float, species: Sequence[int], dtype: torch.dtype) -> List[Tensor]:
    """A small jittered cluster (8 atoms, tens of edges) to trace with: sizes other than 0 and 1,
    so that torch.export keeps them symbolic."""
    generator = torch.Generator().manual_seed(0)
    spacing = min(1.5, 0.45 * cutoff)
    grid = torch.tensor([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=torch.float64)
    positions = (grid * spacing + 0.1 * spacing * torch.rand(8, 3, generator=generator, dtype=torch.float64)).to(dtype)
    atomic_numbers = torch.tensor([species[i % len(species)] for i in range(8)], dtype=torch.long)
    return [positions, atomic_numbers, torch.zeros(3, 3, dtype=dtype), torch.zeros(3, dtype=torch.bool)]


def _compile(module: torch.nn.Module, inputs: List[Tensor], dynamic_shapes) -> List[Any]:
    """Trace forward and backward into one graph, export it and compile it; AOTInductor's files."""
    from torch.fx.experimental.proxy_tensor import make_fx

    # the weights enter the traced graph as constants; the inputs stay symbolic
    graph = make_fx(module, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*inputs)
    exported = torch.export.export(graph, tuple(inputs), dynamic_shapes=dynamic_shapes, strict=False)
    # cpp.simdlen 1: Inductor's vectorised C++ code generation fails (an assertion in its
    # scatter-add store) on these graphs with torch 2.9.1 and 2.13; scalar loops compile
    options = {"aot_inductor.package": True, "cpp.simdlen": 1}
    return torch._inductor.aot_compile(exported.module(), tuple(inputs), options=options)


def write_package(potential: torch.nn.Module, path: str, metadata_json: str, metadata_name: str) -> None:
    """Compile (a CPU copy of) ``potential``, an :class:`mlff.Potential`, to an AOTInductor package at ``path``.

    Takes tens of seconds per model (a C++ compile). Raises ValueError on a torch too old.
    """
    reason = pt2_support_error()
    if reason is not None:
        raise ValueError(reason)
    from torch.export import Dim
    from torch.export.pt2_archive._package import package_pt2

    unchecked = rebuilt_copy(potential).cpu()
    # Python errors on tensor values cannot be compiled: CompiledPotential checks eagerly instead
    unchecked.set_input_validation(False)
    deployed = DeployedPotential(unchecked, metadata_json)
    dtype = potential.scale.dtype
    inputs = _example_inputs(deployed.cutoff, deployed.species, dtype)
    n_atoms = Dim("n_atoms", min=1)
    n_edges = Dim("n_edges", min=0)
    atom_shapes = ({0: n_atoms}, {0: n_atoms}, None, None)
    edge_index, cell_shifts = neighbor_list(inputs[0], inputs[2], inputs[3], deployed.cutoff)
    files = {
        MODEL_WITH_NEIGHBORS: _compile(_WithDerivatives(deployed, True), inputs, atom_shapes),
        MODEL_WITH_EDGES: _compile(
            _WithDerivatives(deployed, False),
            inputs + [edge_index, cell_shifts],
            atom_shapes + ({1: n_edges}, {0: n_edges}),
        ),
    }
    package_pt2(path, aoti_files=files, extra_files={metadata_name: metadata_json})


class _ModelDtype:
    """Stands in for ``DeployedPotential.potential`` where engines read ``potential.scale.dtype``."""

    def __init__(self, dtype: torch.dtype):
        self.scale = torch.zeros((), dtype=dtype)


class CompiledPotential(torch.nn.Module):
    """A loaded ``.pt2`` package, called like :class:`~mlff.export.deployed.DeployedPotential`.

    Attributes ``cutoff`` (Angstrom), ``species``, ``metadata_json``, ``dtype`` and ``device``
    are as the file says; dtype and device are fixed at compile time, and ``.to()`` to another
    one raises ValueError.

    Parameters
    ----------
    runners : dict
        The package's compiled models, by name (``with_neighbors``, ``with_edges``).
    metadata : dict
        The package's metadata (``species``, ``cutoff``, ``dtype``, ``device``, ...).
    metadata_json : str
        The same, as written in the file.
    """

    def __init__(self, runners: Dict[str, Any], metadata: Dict[str, Any], metadata_json: str):
        super().__init__()
        self._runners = runners
        self.metadata_json = metadata_json
        self.cutoff = float(metadata["cutoff"])
        self.species = [int(z) for z in metadata["species"]]
        self.dtype = getattr(torch, metadata["dtype"])
        self.device = torch.device(metadata.get("device", "cpu"))
        self.potential = _ModelDtype(self.dtype)
        self.species_index = SpeciesIndex(self.species)

    def _apply(self, fn, recurse=True):
        # .to(), .float(), .double(), .cuda() all come here: the compiled code cannot follow
        probe = fn(torch.zeros((), dtype=self.dtype, device=self.device))
        if probe.dtype != self.dtype or probe.device != self.device:
            raise ValueError(
                f"this .pt2 potential is compiled for {str(self.dtype).replace('torch.', '')} on {self.device} and "
                f"cannot move to {str(probe.dtype).replace('torch.', '')} on {probe.device}: deploy the checkpoint "
                "again in that dtype (`mlff deploy ... --dtype`), or use a TorchScript (.pt) file"
            )
        return self

    def __prepare_scriptable__(self):
        # torch.jit.script calls this on every module it is given, submodules included
        raise ValueError(
            "a .pt2 (AOTInductor) potential cannot run inside TorchScript (e.g. openmm-torch's TorchForce): "
            "deploy a TorchScript file (-o potential.pt) for that, or use OpenMM's PythonForce backend"
        )

    def forward(
        self,
        positions: Tensor,
        atomic_numbers: Tensor,
        cell: Tensor,
        pbc: Tensor,
        edge_index: Optional[Tensor] = None,
        cell_shifts: Optional[Tensor] = None,
        compute_stress: bool = False,
    ) -> Dict[str, Tensor]:
        """Energy (eV), per-atom energies, forces (eV/Angstrom) and optionally stress.

        Parameters and returns as :meth:`DeployedPotential.forward
        <mlff.export.deployed.DeployedPotential.forward>`: positions (n_atoms, 3) Angstrom,
        atomic_numbers (n_atoms,), cell (3, 3) Angstrom, pbc (3,), optional edge_index
        (2, n_edges) and cell_shifts (n_edges, 3); returns ``"energy"`` (1,),
        ``"node_energy"`` (n_atoms,), ``"forces"`` (n_atoms, 3), and with ``compute_stress``
        ``"virial"`` (1, 3, 3) eV and ``"stress"`` (1, 3, 3) eV/Angstrom^3.
        """
        positions = positions.detach().to(device=self.device, dtype=self.dtype).contiguous()
        cell = cell.detach().to(device=self.device, dtype=self.dtype).reshape(3, 3).contiguous()
        pbc = pbc.to(device=self.device, dtype=torch.bool).reshape(3).contiguous()
        atomic_numbers = atomic_numbers.to(device=self.device, dtype=torch.long).contiguous()
        potential_checks.check_finite(positions, cell.unsqueeze(0))
        self.species_index(atomic_numbers)  # raises ValueError for elements the model does not know
        batch = torch.zeros(positions.size(0), dtype=torch.long, device=self.device)
        if edge_index is None or cell_shifts is None:
            outputs = self._runners[MODEL_WITH_NEIGHBORS](positions, atomic_numbers, cell, pbc)
            edge_index, cell_shifts = outputs[len(OUTPUT_NAMES)], outputs[len(OUTPUT_NAMES) + 1]
            potential_checks.check_no_coincident_atoms(positions, cell.unsqueeze(0), edge_index, cell_shifts, batch)
        else:
            edge_index = edge_index.to(device=self.device, dtype=torch.long).contiguous()
            cell_shifts = cell_shifts.to(device=self.device, dtype=torch.long).contiguous()
            potential_checks.check_no_coincident_atoms(positions, cell.unsqueeze(0), edge_index, cell_shifts, batch)
            outputs = self._runners[MODEL_WITH_EDGES](positions, atomic_numbers, cell, pbc, edge_index, cell_shifts)
        results = dict(zip(OUTPUT_NAMES, outputs))
        if not compute_stress:
            del results["virial"], results["stress"]
        return results


def load_package(path: str, metadata: Dict[str, Any], metadata_json: str, device: str = "cpu") -> CompiledPotential:
    """Load the compiled models of an mlff ``.pt2`` package (metadata already read and checked).

    Raises ValueError when the package is for another device, or torch cannot load it.
    """
    reason = pt2_support_error()
    if reason is not None:
        raise ValueError(f"{path}: {reason}")
    compiled_for = torch.device(metadata.get("device", "cpu"))
    if torch.device(device).type != compiled_for.type:
        raise ValueError(
            f"{path} is compiled for {compiled_for.type} and cannot run on {device}: load it with device="
            f"{compiled_for.type!r}, or use a TorchScript (.pt) file, which runs on any device"
        )
    from torch.export.pt2_archive._package import load_pt2

    try:
        contents = load_pt2(path)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{path}: torch {torch.__version__} cannot load this AOTInductor package (written with torch "
            f"{metadata.get('torch_version', '?')}): {first_line}. Re-deploy the checkpoint with this torch"
        ) from error
    missing = [name for name in (MODEL_WITH_NEIGHBORS, MODEL_WITH_EDGES) if name not in contents.aoti_runners]
    if missing:
        raise ValueError(f"{path} lacks the compiled model(s) {missing}: the file is damaged; re-deploy the checkpoint")
    return CompiledPotential(contents.aoti_runners, metadata, metadata_json)


def metadata_for_package(info: Dict[str, Any]) -> str:
    """The metadata JSON of a package: ``info`` plus what the compiled code is fixed to."""
    return json.dumps({**info, "file_type": "aotinductor", "device": "cpu"}, sort_keys=True)
