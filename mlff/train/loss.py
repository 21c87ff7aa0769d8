"""Training loss: weighted errors on energy per atom, forces and stress.

    L = w_E <w_c rho(dE_c / n_c)> + w_F <w_c rho(dF_ic)> + w_S <w_c rho(dS_c)>

with rho the squared error or the Huber function, w_c the configuration's weight, <.> a mean
over labelled configurations (energy, stress) or atoms (forces) and their components. Missing
labels are masked out.
"""

from typing import Dict

import torch
from torch import Tensor

from mlff.train.dataset import Batch


class WeightedLoss(torch.nn.Module):
    """The loss above.

    Parameters
    ----------
    energy_weight, forces_weight, stress_weight : float
    kind : "mse" | "huber"
    huber_delta : float
        Where the Huber function turns linear (label units).
    """

    def __init__(self, energy_weight: float = 1.0, forces_weight: float = 10.0, stress_weight: float = 0.0, kind: str = "mse", huber_delta: float = 0.01):
        super().__init__()
        if kind not in ("mse", "huber"):
            raise ValueError(f"loss kind must be 'mse' or 'huber', got {kind!r}")
        self.energy_weight = float(energy_weight)
        self.forces_weight = float(forces_weight)
        self.stress_weight = float(stress_weight)
        self.kind = kind
        self.huber_delta = float(huber_delta)

    @property
    def needs_forces(self) -> bool:
        return self.forces_weight > 0

    @property
    def needs_stress(self) -> bool:
        return self.stress_weight > 0

    def _rho(self, error: Tensor) -> Tensor:
        if self.kind == "huber":
            return torch.nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none", delta=self.huber_delta)
        return error * error

    def forward(self, predicted: Dict[str, Tensor], batch: Batch) -> Dict[str, Tensor]:
        """``{"total", "energy", "forces", "stress"}``, scalar tensors (the parts unweighted)."""
        zero = batch.energy.new_zeros(())
        parts = {"energy": zero, "forces": zero, "stress": zero}
        if self.energy_weight > 0:
            error = (predicted["energy"] - batch.energy) / batch.n_atoms  # [n_graphs] eV/atom
            mask = batch.weight * batch.energy_mask
            parts["energy"] = (mask * self._rho(error)).sum() / batch.energy_mask.sum().clamp(min=1)
        if self.forces_weight > 0:
            error = predicted["forces"] - batch.forces  # [n_atoms, 3]
            mask = (batch.weight[batch.graph.batch] * batch.forces_mask).unsqueeze(-1)
            parts["forces"] = (mask * self._rho(error)).sum() / (3 * batch.forces_mask.sum()).clamp(min=1)
        if self.stress_weight > 0:
            error = predicted["stress"] - batch.stress  # [n_graphs, 3, 3]
            mask = (batch.weight * batch.stress_mask).reshape(-1, 1, 1)
            parts["stress"] = (mask * self._rho(error)).sum() / (9 * batch.stress_mask.sum()).clamp(min=1)
        parts["total"] = (
            self.energy_weight * parts["energy"] + self.forces_weight * parts["forces"] + self.stress_weight * parts["stress"]
        )
        return parts
