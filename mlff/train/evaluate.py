"""Evaluation of a potential (in memory, from a checkpoint or a deployed file) on labelled data."""

import os
import zipfile
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mlff.train.dataset import Batch, Sample, batches
from mlff.train.metrics import ErrorAccumulator

#: Maps a batch to predictions: ``{"energy" [n_graphs], "forces" [n_atoms, 3], "stress" [n_graphs, 3, 3]}``
Predictor = Callable[[Batch, bool], Dict[str, Tensor]]


def potential_predictor(potential: torch.nn.Module, device: torch.device = torch.device("cpu")) -> Predictor:
    """Predictions of an :class:`mlff.Potential` on whole batches."""

    def predict(batch: Batch, compute_stress: bool) -> Dict[str, Tensor]:
        batch = batch.to(device)
        out = potential(batch.graph, True, compute_stress)
        return {key: value.detach() for key, value in out.items()}

    return predict


def deployed_predictor(module: torch.nn.Module) -> Predictor:
    """Predictions of a deployed potential (one system per call, neighbour list inside)."""

    def predict(batch: Batch, compute_stress: bool) -> Dict[str, Tensor]:
        graph = batch.graph
        energies, forces, stresses = [], [], []
        for index in range(graph.cell.size(0)):
            atoms = graph.batch == index
            out = module(graph.positions[atoms], graph.atomic_numbers[atoms], graph.cell[index], graph.pbc[index], None, None, compute_stress)
            energies.append(out["energy"].detach().reshape(()))
            forces.append(out["forces"].detach())
            if compute_stress:
                stresses.append(out["stress"].detach().reshape(3, 3))
        result = {"energy": torch.stack(energies), "forces": torch.cat(forces)}
        if compute_stress:
            result["stress"] = torch.stack(stresses)
        return result

    return predict


#: quantity -> (reference, predicted), flat arrays in eV units (see :func:`predictions`)
Values = Dict[str, Tuple[np.ndarray, np.ndarray]]


def predictions(predict: Predictor, samples: Sequence[Sample], batch_size: int = 16) -> Values:
    """Reference and predicted values of ``predict`` on the labelled ``samples``.

    Returns
    -------
    dict
        ``"energy"`` (eV per configuration), ``"energy_per_atom"`` (eV/atom), ``"forces"``
        (force components, eV/Angstrom) and, when some sample has a stress, ``"stress"``
        (components, eV/Angstrom^3); each ``(reference, predicted)``, flat, labelled entries only.
    """
    parts: Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]] = {}

    def add(name: str, reference: Tensor, predicted: Tensor) -> None:
        references, predicted_values = parts.setdefault(name, ([], []))
        references.append(reference.reshape(-1).numpy())
        predicted_values.append(predicted.reshape(-1).numpy())

    compute_stress = any(s.stress is not None for s in samples)
    for batch in batches(samples, batch_size):
        out = predict(batch, compute_stress)
        energy = out["energy"].cpu().to(batch.energy.dtype)
        labelled = batch.energy_mask.bool()
        add("energy", batch.energy[labelled], energy[labelled])
        add("energy_per_atom", (batch.energy / batch.n_atoms)[labelled], (energy / batch.n_atoms)[labelled])
        has_forces = batch.forces_mask.bool()
        add("forces", batch.forces[has_forces], out["forces"].cpu().to(batch.forces.dtype)[has_forces])
        if compute_stress:
            has_stress = batch.stress_mask.bool()
            add("stress", batch.stress[has_stress], out["stress"].cpu().to(batch.stress.dtype)[has_stress])
    return {name: (np.concatenate(reference), np.concatenate(predicted)) for name, (reference, predicted) in parts.items()}


def metrics(values: Values) -> Dict[str, float]:
    """MAE and RMSE (eV units) of :func:`predictions`; see :mod:`mlff.train.metrics`."""
    accumulator = ErrorAccumulator()
    for name, (reference, predicted) in values.items():
        accumulator.add(name, predicted - reference)
    return accumulator.result()


def evaluate(predict: Predictor, samples: Sequence[Sample], batch_size: int = 16) -> Dict[str, float]:
    """MAE and RMSE (eV units) of ``predict`` on ``samples``; see :mod:`mlff.train.metrics`."""
    return metrics(predictions(predict, samples, batch_size))


def load_predictor(path: str, device: str = "cpu"):
    """(predictor, cutoff, dtype, species) of a checkpoint or a deployed file.

    Deployed files are recognised by their metadata entry; anything else is read as a
    checkpoint (which raises ValueError for a file that is not one).
    """
    from mlff.export import load_potential
    from mlff.train.checkpoint import load_checkpoint

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    if _is_deployed(path):
        module = load_potential(path, device=device)
        dtype = module.potential.scale.dtype
        return deployed_predictor(module), float(module.cutoff), dtype, [int(z) for z in module.species]
    potential, _ = load_checkpoint(path, map_location=device)
    potential.to(device)
    return potential_predictor(potential, torch.device(device)), potential.cutoff, potential.scale.dtype, list(potential.species)


def _is_deployed(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive with mlff metadata (a deployed potential)."""
    from mlff.export.files import METADATA_NAME

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(f"extra/{METADATA_NAME}") for name in archive.namelist())
