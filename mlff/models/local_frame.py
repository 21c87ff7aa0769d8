"""Local-frame model: invariant features from coordinates projected on per-atom frames, then
plain MLP message passing (after Wang and Zhang, 2022, "Graph Neural Network with Local Frame
for Molecular Potential Energy Surface").

The geometry enters once, as invariant edge features; everything after is ordinary
(non-equivariant) message passing, which is what makes this family fast:

    frames:   E_i = LocalFrame(h0, neighbours of i)                    # [n_atoms, 3, 3], mlff.nn.frame
    edges:    g_ij = MLP([radial(r_ij), E_j r_ij / c, E_i r_ji / c, E_j E_i^T]) * f(r_ij)   # [n_edges, F]
    layers:   h_j = h_j + U(sum_i g_ij * V h_i)                        # U bias-free: no message, no change
    energy:   readout(h) - readout(h0)                                  # exactly 0 for an isolated atom

with i the sender and j the receiver of an edge, c the cutoff and f the envelope. The edge
features (both atoms' views of the edge and the relative orientation of their frames) are
shared by all layers, as the paper's filter sharing does.

Differences from the paper: one orthonormal frame of three axes per atom from a regularised
Gram-Schmidt (the paper projects on many non-orthogonalised frame vectors), so that degenerate
neighbourhoods (a lone pair of atoms, collinear or symmetric neighbours, an isolated atom) give
axes that shrink smoothly to zero instead of being undefined; see :mod:`mlff.nn.frame`. At
such symmetric sites the angular information carried by the frame is lost (no equivariant
frame can carry it), the radial information and the neighbours' frames remain.
"""

import dataclasses
from typing import Dict, Optional

import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.models.base import EnergyModel, edge_geometry, energy_outputs
from mlff.models.config import ModelConfig, require_positive
from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.frame import LocalFrame
from mlff.nn.mlp import mlp
from mlff.nn.radial import BesselBasis
from mlff.nn.readout import EnergyReadout
from mlff.nn.scatter import scatter_sum

#: Invariants of an edge from the frames: 3 + 3 projections of the edge vector, 3 x 3 frame-frame.
N_FRAME_INVARIANTS = 15


@dataclasses.dataclass(frozen=True)
class LocalFrameConfig(ModelConfig):
    """Local-frame model hyperparameters (defaults near the paper's MD17 setting).

    Parameters
    ----------
    cutoff : float
        Angstrom (default 5.0).
    species : tuple of int
        Atomic numbers (default: every element).
    n_features : int
        Atom and edge feature size.
    n_interactions : int
        Number of message-passing layers.
    n_basis : int
        Sine Bessel radial functions.
    envelope_exponent : int
        Degree p of the polynomial cutoff envelope.
    frame_epsilon : float
        Regularisation of the frames' Gram-Schmidt, in units of the cutoff: frame vectors much
        shorter than this give vanishing axes (see :mod:`mlff.nn.frame`).
    """

    n_features: int = 256
    n_interactions: int = 6
    n_basis: int = 32
    envelope_exponent: int = 6
    frame_epsilon: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self,
            n_features=self.n_features,
            n_interactions=self.n_interactions,
            n_basis=self.n_basis,
            envelope_exponent=self.envelope_exponent,
            frame_epsilon=self.frame_epsilon,
        )


class FrameEdgeFeatures(torch.nn.Module):
    """Invariant edge features from distances and frames, shared by all layers.

    Parameters
    ----------
    n_features, n_basis : int
    cutoff : float
        Angstrom; projections are divided by it.
    """

    def __init__(self, n_features: int, n_basis: int, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.network = mlp([n_basis + N_FRAME_INVARIANTS, n_features, n_features], torch.nn.SiLU())

    def forward(
        self, vectors: Tensor, radial: Tensor, envelope: Tensor, frames: Tensor, sender: Tensor, receiver: Tensor
    ) -> Tensor:
        """Edge features (n_edges, F) from edge vectors (n_edges, 3) Angstrom (sender to
        receiver), radial basis (n_edges, n_basis), envelope (n_edges,), frames (n_atoms, 3, 3)."""
        receiver_frames = frames[receiver]  # [n_edges, 3, 3]
        sender_frames = frames[sender]  # [n_edges, 3, 3]
        scaled = vectors / self.cutoff  # [n_edges, 3]
        # the sender seen from the receiver (r_i - r_j) and the receiver seen from the sender
        seen_by_receiver = -torch.einsum("ekx,ex->ek", receiver_frames, scaled)  # [n_edges, 3]
        seen_by_sender = torch.einsum("ekx,ex->ek", sender_frames, scaled)  # [n_edges, 3]
        frame_frame = torch.einsum("ekx,elx->ekl", receiver_frames, sender_frames).flatten(1)  # [n_edges, 9]
        invariants = torch.cat([radial, seen_by_receiver, seen_by_sender, frame_frame], dim=-1)
        return self.network(invariants) * envelope.unsqueeze(-1)


class FrameMessagePassing(torch.nn.Module):
    """One layer: messages ``g_ij * V h_i`` summed at j, then a bias-free update MLP.

    Parameters
    ----------
    n_features : int
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.value = torch.nn.Linear(n_features, n_features)
        self.update = mlp([n_features, n_features, n_features], torch.nn.SiLU(), bias=False)

    def forward(self, features: Tensor, edge_features: Tensor, sender: Tensor, receiver: Tensor) -> Tensor:
        """New features (n_atoms, F) from features (n_atoms, F) and edge features (n_edges, F)."""
        messages = edge_features * self.value(features)[sender]  # [n_edges, F]
        aggregated = scatter_sum(messages, receiver, features.size(0))  # [n_atoms, F]
        return features + self.update(aggregated)


class LocalFrameModel(EnergyModel):
    """Local-frame energy model: ``forward(graph) -> {"node_energy": (n_atoms,), "energy": (n_graphs,)}``, eV.

    Parameters
    ----------
    config : LocalFrameConfig, optional
        Hyperparameters; defaults when omitted.
    """


    def __init__(self, config: Optional[LocalFrameConfig] = None):
        config = LocalFrameConfig() if config is None else config
        super().__init__(config)
        self.embedding = torch.nn.Embedding(len(self.species), config.n_features)
        self.radial = BesselBasis(config.n_basis, config.cutoff)
        self.envelope = PolynomialCutoff(config.cutoff, config.envelope_exponent)
        self.frame = LocalFrame(config.n_features, config.n_basis, config.cutoff, config.frame_epsilon)
        self.edge_features = FrameEdgeFeatures(config.n_features, config.n_basis, config.cutoff)
        self.interactions = torch.nn.ModuleList(
            [FrameMessagePassing(config.n_features) for _ in range(config.n_interactions)]
        )
        self.readout = EnergyReadout([config.n_features, config.n_features // 2, 1], torch.nn.SiLU())

    def forward(self, graph: AtomicGraph) -> Dict[str, Tensor]:
        sender = graph.edge_index[0]
        receiver = graph.edge_index[1]
        vectors, distances = edge_geometry(graph)  # [n_edges, 3], [n_edges]
        radial = self.radial(distances)  # [n_edges, n_basis]
        envelope = self.envelope(distances)  # [n_edges]

        embedded = self.embedding(self.species_index(graph.atomic_numbers))  # [n_atoms, F]
        # frame of the receiver j from its neighbours i: vectors r_i - r_j
        frames = self.frame(embedded, -vectors, radial, envelope, sender, receiver)  # [n_atoms, 3, 3]
        edge_features = self.edge_features(vectors, radial, envelope, frames, sender, receiver)  # [n_edges, F]

        features = embedded
        for interaction in self.interactions:
            features = interaction(features, edge_features, sender, receiver)

        node_energy = self.readout(features, embedded)  # [n_atoms]
        return energy_outputs(node_energy, graph)
