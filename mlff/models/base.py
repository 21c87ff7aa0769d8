"""What every model family shares: its config, cutoff and species, and the step from per-atom
energies to per-system energies. The family-specific layers live in each model's module."""

from typing import Dict, List, Tuple

import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.models.config import ModelConfig
from mlff.neighbors import edge_vectors
from mlff.nn.embedding import SpeciesIndex
from mlff.nn.scatter import scatter_sum


class EnergyModel(torch.nn.Module):
    """Base of the model families: ``forward(graph) -> {"node_energy": (n_atoms,), "energy": (n_graphs,)}``, eV.

    Parameters
    ----------
    config : ModelConfig
        The family's frozen hyperparameters (kept as ``self.config``, ignored by TorchScript).
    """

    __jit_ignored_attributes__ = ["config"]

    cutoff: float
    species: List[int]

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.cutoff = config.cutoff
        self.species = list(config.species)
        self.species_index = SpeciesIndex(self.species)


def edge_geometry(graph: AtomicGraph) -> Tuple[Tensor, Tensor]:
    """Edge vectors (n_edges, 3) and their lengths (n_edges,), Angstrom, differentiable."""
    vectors = edge_vectors(graph.positions, graph.cell, graph.edge_index, graph.cell_shifts, graph.batch)
    return vectors, torch.linalg.vector_norm(vectors, dim=-1)


def energy_outputs(node_energy: Tensor, graph: AtomicGraph) -> Dict[str, Tensor]:
    """The model contract's outputs from per-atom energies (n_atoms,), eV."""
    return {"node_energy": node_energy, "energy": scatter_sum(node_energy, graph.batch, graph.cell.size(0))}
