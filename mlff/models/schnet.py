"""SchNet: continuous-filter convolutions on interatomic distances (Schuett et al., 2018).

An invariant message-passing model. Each interaction multiplies the neighbours' features by a
filter generated from the distance (a radial basis through a small network, times a smooth
cutoff envelope), sums them at the receiving atom, and adds an atom-wise update:

    x_j = W_in h_j
    m_i = sum_j x_j * filter(r_ij)                 # continuous-filter convolution
    h_i = h_i + W_2 ssp(W_1 m_i)                    # bias-free, so m_i = 0 leaves h_i unchanged

Readout: an atom-wise MLP, relative to the atom alone (:mod:`mlff.nn.readout`).

Differences from the paper, for the library's contract: a polynomial envelope instead of the
cosine cutoff (energy and forces smooth at the cutoff), and no biases in the atom-wise update
after the convolution (an isolated atom has exactly zero energy).
"""

import dataclasses
from typing import Dict, Optional

import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.models.base import EnergyModel, edge_geometry, energy_outputs
from mlff.models.config import ModelConfig, require_positive
from mlff.nn.activation import ShiftedSoftplus, ZeroPreservingShiftedSoftplus
from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.mlp import mlp
from mlff.nn.radial import GaussianBasis
from mlff.nn.readout import EnergyReadout
from mlff.neighbors import one_per_pair
from mlff.nn.scatter import scatter_sum


@dataclasses.dataclass(frozen=True)
class SchNetConfig(ModelConfig):
    """SchNet hyperparameters (defaults as in the paper and schnetpack).

    Parameters
    ----------
    cutoff : float
        Angstrom (default 5.0).
    species : tuple of int
        Atomic numbers (default: every element).
    n_features : int
        Atom feature size (paper: 64; schnetpack: 128).
    n_filters : int
        Filter size of the convolutions.
    n_interactions : int
        Number of interaction blocks.
    n_basis : int
        Gaussians on [0, cutoff]; 50 over 5 Angstrom gives the paper's 0.1 Angstrom spacing.
    envelope_exponent : int
        Degree p of the polynomial cutoff envelope.
    """

    n_features: int = 128
    n_filters: int = 128
    n_interactions: int = 3
    n_basis: int = 50
    envelope_exponent: int = 6

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self,
            n_features=self.n_features,
            n_filters=self.n_filters,
            n_interactions=self.n_interactions,
            n_basis=self.n_basis,
            envelope_exponent=self.envelope_exponent,
        )


class CFConvInteraction(torch.nn.Module):
    """One SchNet interaction block: continuous-filter convolution and atom-wise update.

    Parameters
    ----------
    n_features, n_filters, n_basis : int
        Atom feature size, filter size, radial basis size.
    """

    def __init__(self, n_features: int, n_filters: int, n_basis: int):
        super().__init__()
        self.to_filter_space = torch.nn.Linear(n_features, n_filters, bias=False)
        self.filter_network = mlp([n_basis, n_filters, n_filters], ShiftedSoftplus())
        # no biases after the aggregation: a zero message gives exactly zero update
        self.update = mlp([n_filters, n_features, n_features], ZeroPreservingShiftedSoftplus(), bias=False)

    def forward(
        self, features: Tensor, radial: Tensor, envelope: Tensor, sender: Tensor, receiver: Tensor, both_ways: bool
    ) -> Tensor:
        """New features (n_atoms, F) from features (n_atoms, F), radial basis (n_edges, n_basis)
        and envelope (n_edges,). ``both_ways``: each edge stands for a pair, and carries the
        message in both directions (the filter depends on the distance only)."""
        filters = self.filter_network(radial) * envelope.unsqueeze(-1)  # [n_edges, n_filters]
        projected = self.to_filter_space(features)
        if both_ways:
            messages = torch.cat([projected[sender] * filters, projected[receiver] * filters])
            aggregated = scatter_sum(messages, torch.cat([receiver, sender]), features.size(0))
        else:
            aggregated = scatter_sum(projected[sender] * filters, receiver, features.size(0))  # [n_atoms, n_filters]
        return features + self.update(aggregated)


class SchNet(EnergyModel):
    """SchNet energy model: ``forward(graph) -> {"node_energy": (n_atoms,), "energy": (n_graphs,)}``, eV.

    Parameters
    ----------
    config : SchNetConfig, optional
        Hyperparameters; defaults when omitted.
    """


    def __init__(self, config: Optional[SchNetConfig] = None):
        config = SchNetConfig() if config is None else config
        super().__init__(config)
        self.embedding = torch.nn.Embedding(len(self.species), config.n_features)
        self.radial = GaussianBasis(config.n_basis, config.cutoff)
        self.envelope = PolynomialCutoff(config.cutoff, config.envelope_exponent)
        self.interactions = torch.nn.ModuleList(
            [CFConvInteraction(config.n_features, config.n_filters, config.n_basis) for _ in range(config.n_interactions)]
        )
        self.readout = EnergyReadout([config.n_features, config.n_features // 2, 1], ShiftedSoftplus())
        self.validate = True  # check that the neighbour list is a full one (see forward)

    def forward(self, graph: AtomicGraph) -> Dict[str, Tensor]:
        sender = graph.edge_index[0]
        receiver = graph.edge_index[1]
        vectors, distances = edge_geometry(graph)  # [n_edges, 3], [n_edges]
        # A full list holds every pair twice with the same distance, hence the same filter: run
        # the filter network (most of the work) once per pair and send the message both ways.
        pairs = one_per_pair(graph.edge_index, graph.cell_shifts)
        both_ways = True
        if self.validate:  # off only in graphs compiled ahead of time, which mlff feeds full lists
            both_ways = 2 * pairs.numel() == distances.numel()  # otherwise: not a full list, use every edge
        if both_ways:
            sender, receiver, distances = sender[pairs], receiver[pairs], distances[pairs]
        radial = self.radial(distances)  # [n_edges or n_pairs, n_basis]
        envelope = self.envelope(distances)

        embedded = self.embedding(self.species_index(graph.atomic_numbers))  # [n_atoms, F]
        features = embedded
        for interaction in self.interactions:
            features = interaction(features, radial, envelope, sender, receiver, both_ways)

        node_energy = self.readout(features, embedded)  # [n_atoms]
        return energy_outputs(node_energy, graph)
