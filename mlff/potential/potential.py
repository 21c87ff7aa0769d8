"""Potential: a model's energy made physical, with forces, virial and stress by autograd.

The energy of atom i of species z is

    E_i = scale * model_node_energy_i + shift + E0[z]

and a system's energy is the sum over its atoms. ``E0`` are per-species reference energies
(eV, e.g. isolated-atom energies or a least-squares fit to the data); ``scale`` and ``shift``
(eV) are set from data before training. Because models give exactly zero node energy to an atom
without neighbours, an isolated atom's energy is exactly ``E0[z] + shift`` -- exactly ``E0[z]``
with the default ``shift = 0``, the usual choice when E0 are fitted.

One code path serves a single system and a batch: everything is per atom or per graph, and the
graph's ``batch`` vector says which atom belongs where.
"""

from typing import Dict, List, Mapping, Optional

import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.nn.embedding import SpeciesIndex
from mlff.nn.scatter import scatter_sum
from mlff.potential.checks import check_finite, check_no_coincident_atoms
from mlff.potential.derivatives import apply_symmetric_strain, energy_derivatives


class Potential(torch.nn.Module):
    """Wraps an energy model (see :mod:`mlff.models`) into a potential with derivatives.

    Parameters
    ----------
    model : torch.nn.Module
        Has ``cutoff: float`` (Angstrom), ``species: List[int]`` and ``forward(graph)`` returning
        at least ``"node_energy"`` (n_atoms,) in eV.
    reference_energies : mapping of int to float, optional
        E0 per atomic number, eV; species left out get 0. Keys must be among ``model.species``.
    scale : float
        Multiplies the model's node energies (dimensionless).
    shift : float
        Added to every atom's energy, eV.

    Notes
    -----
    The potential's dtype is its model's: call ``potential.double()`` / ``.float()`` on the
    potential (buffers follow). Inputs are cast to it. Positions must be finite and no two atoms
    (or periodic images) may coincide: both raise ValueError, as does an element outside
    ``model.species``. Derivatives keep their graph (``create_graph``, so that losses on forces
    and stress can be differentiated) in training mode or when the input positions already
    require grad; otherwise the outputs of a call with derivatives are detached. Calls under
    ``torch.no_grad()`` still get forces and stress (not under ``torch.inference_mode()``, which
    forbids autograd).
    """

    cutoff: float
    species: List[int]

    def __init__(
        self,
        model: torch.nn.Module,
        reference_energies: Optional[Mapping[int, float]] = None,
        scale: float = 1.0,
        shift: float = 0.0,
    ):
        super().__init__()
        self.model = model
        self.cutoff = float(model.cutoff)
        self.species = [int(z) for z in model.species]
        self.species_index = SpeciesIndex(self.species)
        # input checks (finite positions and cell, no coincident atoms, known elements); see
        # set_input_validation
        self.validate_inputs = True
        dtype = _module_dtype(model)
        self.register_buffer("reference_energies", torch.zeros(len(self.species), dtype=dtype))
        self.register_buffer("scale", torch.tensor(float(scale), dtype=dtype))
        self.register_buffer("shift", torch.tensor(float(shift), dtype=dtype))
        if reference_energies is not None:
            self.set_reference_energies(reference_energies)

    @torch.jit.unused
    def set_reference_energies(self, reference_energies: Mapping[int, float]) -> None:
        """Set E0 (eV) per atomic number; species not given get 0."""
        unknown = sorted(set(int(z) for z in reference_energies) - set(self.species))
        if unknown:
            raise ValueError(f"reference energies given for {unknown}, which are not among the model's species {self.species}")
        values = torch.zeros_like(self.reference_energies)
        for z, energy in reference_energies.items():
            values[self.species.index(int(z))] = float(energy)
        self.reference_energies.copy_(values)

    @torch.jit.unused
    def set_input_validation(self, enabled: bool) -> None:
        """Turn the data-dependent input checks on (default) or off, in this potential and its
        model. Off only to compile a graph ahead of time whose caller checks the input eagerly
        (:mod:`mlff.export.compiled`): unchecked bad input gives NaN or garbage, not an error."""
        self.validate_inputs = bool(enabled)
        for module in self.modules():
            if isinstance(getattr(module, "validate", None), bool):  # SpeciesIndex, SchNet, ...
                module.validate = bool(enabled)

    @torch.jit.unused
    def set_scale_shift(self, scale: float, shift: float) -> None:
        """Set the scale (dimensionless) and shift (eV) of the model's node energies."""
        self.scale.fill_(float(scale))
        self.shift.fill_(float(shift))

    def forward(self, graph: AtomicGraph, compute_forces: bool = True, compute_stress: bool = False) -> Dict[str, Tensor]:
        """Energies and requested derivatives of one or many systems.

        Parameters
        ----------
        graph : AtomicGraph
            With edges for a cutoff of at least ``self.cutoff``.
        compute_forces : bool
        compute_stress : bool
            Also the virial, and the stress of systems whose cell has nonzero volume (zero for
            systems without a cell).

        Returns
        -------
        dict
            ``"energy"`` (n_graphs,) eV; ``"node_energy"`` (n_atoms,) eV, per-atom energies
            including E0 and scale/shift; ``"forces"`` (n_atoms, 3) eV/Angstrom if requested;
            ``"virial"`` (n_graphs, 3, 3) eV and ``"stress"`` (n_graphs, 3, 3) eV/Angstrom^3 if
            ``compute_stress``.
        """
        # derivatives need autograd even when called under torch.no_grad(); the previous mode
        # is restored before returning (TorchScript has no `with torch.enable_grad()`)
        grad_was_enabled = torch.is_grad_enabled()
        if compute_forces or compute_stress:
            torch.set_grad_enabled(True)
        results = self._evaluate(graph, compute_forces, compute_stress)
        torch.set_grad_enabled(grad_was_enabled)
        return results

    def _evaluate(self, graph: AtomicGraph, compute_forces: bool, compute_stress: bool) -> Dict[str, Tensor]:
        dtype = self.scale.dtype
        positions = graph.positions.to(dtype)
        cell = graph.cell.to(dtype)
        if self.validate_inputs:
            check_finite(positions, cell)
            check_no_coincident_atoms(positions, cell, graph.edge_index, graph.cell_shifts, graph.batch)
        species = self.species_index(graph.atomic_numbers)  # [n_atoms]

        create_graph = self.training or positions.requires_grad
        if compute_forces and not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
        strain: Optional[Tensor] = None
        model_positions = positions
        model_cell = cell
        if compute_stress:
            model_positions, model_cell, strain = apply_symmetric_strain(positions, cell, graph.batch)

        outputs = self.model(
            AtomicGraph(
                positions=model_positions,
                atomic_numbers=graph.atomic_numbers,
                cell=model_cell,
                pbc=graph.pbc,
                edge_index=graph.edge_index,
                cell_shifts=graph.cell_shifts,
                batch=graph.batch,
            )
        )
        node_energy = self.scale * outputs["node_energy"] + self.shift + self.reference_energies[species]
        energy = scatter_sum(node_energy, graph.batch, cell.size(0))  # [n_graphs]

        forces, virial, stress = energy_derivatives(energy, positions, strain, cell, compute_forces, create_graph)
        if (compute_forces or compute_stress) and not create_graph:
            # autograd has freed the graph behind the energy: hand out plain values
            energy = energy.detach()
            node_energy = node_energy.detach()
        results: Dict[str, Tensor] = {"energy": energy, "node_energy": node_energy}
        if forces is not None:
            results["forces"] = forces
        if virial is not None:
            results["virial"] = virial
        if stress is not None:
            results["stress"] = stress
        return results


def _module_dtype(module: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a module's first floating parameter or buffer (default dtype if none)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def rebuilt_copy(potential: Potential) -> Potential:
    """An independent copy of ``potential``: same model class and config, weights, statistics,
    input checks, dtype and device, in eval mode.

    ``copy.deepcopy`` cannot copy models holding TorchScript functions (as some e3nn modules
    do, for instance with l = 2 hidden features), so the copy is rebuilt from the config and
    given the original's ``state_dict``.
    """
    model = type(potential.model)(potential.model.config)
    copied = Potential(model).to(device=potential.scale.device, dtype=potential.scale.dtype)
    copied.load_state_dict(potential.state_dict())
    copied.set_input_validation(potential.validate_inputs)
    return copied.eval()
