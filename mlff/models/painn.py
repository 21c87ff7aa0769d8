"""PaiNN: polarizable atom interaction network (Schuett, Unke, Gastegger, 2021).

Each atom carries scalar features ``s`` (n_atoms, F) and Cartesian vector features ``v``
(n_atoms, 3, F), starting at zero. An interaction is a message block, equivariant messages
from neighbours built from the unit edge vectors, and an update block mixing the two kinds
within each atom:

    message:  (ds, dv_v, dv_r) = phi(s_j) * W(r_ij)             # [n_edges, 3F], W includes the envelope
              s_i += sum_j ds ;  v_i += sum_j dv_v v_j + dv_r r_ij / |r_ij|
    update:   (a_vv, a_sv, a_ss) = MLP([s_i, |V v_i|])
              v_i += a_vv U v_i ;  s_i += a_sv <U v_i, V v_i> + a_ss

Energy: an atom-wise MLP on the final scalars, relative to the atom alone (:mod:`mlff.nn.readout`).
The update block changes the scalars of an atom even without neighbours (``a_ss`` of its own
features), so the model also carries that atom-alone state: the update applied to the
embedding with zero messages and zero vectors, evaluated on same-shaped tensors so that an
isolated atom's two states are bitwise equal and its energy is exactly zero. This costs one
extra update MLP per atom and layer (a few percent; the work per edge dominates).

Differences from the paper: a polynomial envelope instead of the cosine cutoff, and the vector
norm ``sqrt(|V v|^2 + eps)`` (finite gradient at zero vectors, as in schnetpack).
"""

import dataclasses
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.models.base import EnergyModel, edge_geometry, energy_outputs
from mlff.models.config import ModelConfig, require_positive
from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.mlp import mlp
from mlff.nn.radial import BesselBasis
from mlff.nn.readout import EnergyReadout
from mlff.nn.fused import painn_messages

#: Added to squared norms of vector features before the square root (Angstrom-free: features
#: are dimensionless): keeps the gradient finite when a vector feature is exactly zero.
NORM_EPSILON = 1e-8


@dataclasses.dataclass(frozen=True)
class PaiNNConfig(ModelConfig):
    """PaiNN hyperparameters (defaults of the paper and schnetpack).

    Parameters
    ----------
    cutoff : float
        Angstrom (default 5.0).
    species : tuple of int
        Atomic numbers (default: every element).
    n_features : int
        Size F of the scalar and of the vector features.
    n_interactions : int
        Number of (message, update) pairs.
    n_basis : int
        Sine Bessel radial functions.
    envelope_exponent : int
        Degree p of the polynomial cutoff envelope.
    """

    n_features: int = 128
    n_interactions: int = 3
    n_basis: int = 20
    envelope_exponent: int = 6

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self,
            n_features=self.n_features,
            n_interactions=self.n_interactions,
            n_basis=self.n_basis,
            envelope_exponent=self.envelope_exponent,
        )


class PaiNNMessage(torch.nn.Module):
    """Message block: equivariant messages from neighbours, summed at the receiver.

    Parameters
    ----------
    n_features, n_basis : int
    """

    def __init__(self, n_features: int, n_basis: int):
        super().__init__()
        self.n_features = n_features
        self.scalar_network = mlp([n_features, n_features, 3 * n_features], torch.nn.SiLU())
        self.filter = torch.nn.Linear(n_basis, 3 * n_features)

    def forward(
        self,
        scalars: Tensor,
        vectors: Tensor,
        radial: Tensor,
        envelope: Tensor,
        directions: Tensor,
        sender: Tensor,
        receiver: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        """Scalars (n_atoms, F) and vectors (n_atoms, 3, F) after the messages.

        ``radial`` (n_edges, n_basis), ``envelope`` (n_edges,), ``directions`` (n_edges, 3) unit
        vectors from sender to receiver.
        """
        filters = self.filter(radial) * envelope.unsqueeze(-1)  # [n_edges, 3F]
        features = self.scalar_network(scalars)  # [n_atoms, 3F]
        # one compiled pass over the edges on CPU (mlff.nn.fused)
        d_scalars, d_vectors = painn_messages(filters, features, vectors, directions, sender, receiver)
        return scalars + d_scalars, vectors + d_vectors


class PaiNNUpdate(torch.nn.Module):
    """Update block: mixes scalar and vector features within each atom.

    Parameters
    ----------
    n_features : int
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features
        self.vector_mixing = torch.nn.Linear(n_features, 2 * n_features, bias=False)
        self.network = mlp([2 * n_features, n_features, 3 * n_features], torch.nn.SiLU())
        self.norm_epsilon = NORM_EPSILON

    def forward(self, scalars: Tensor, vectors: Tensor) -> Tuple[Tensor, Tensor]:
        """Scalars (n_atoms, F) and vectors (n_atoms, 3, F) after the update."""
        u_vectors, v_vectors = torch.split(self.vector_mixing(vectors), self.n_features, dim=-1)  # [n_atoms, 3, F]
        return self.combine(scalars, vectors, u_vectors, v_vectors)

    def combine(self, scalars: Tensor, vectors: Tensor, u_vectors: Tensor, v_vectors: Tensor) -> Tuple[Tensor, Tensor]:
        """The update from the mixed vectors ``U v`` and ``V v`` (n_atoms, 3, F)."""
        norms = torch.sqrt((v_vectors * v_vectors).sum(dim=1) + self.norm_epsilon)  # [n_atoms, F]
        a = self.network(torch.cat([scalars, norms], dim=-1))  # [n_atoms, 3F]
        a_vv, a_sv, a_ss = torch.split(a, self.n_features, dim=-1)
        inner = (u_vectors * v_vectors).sum(dim=1)  # [n_atoms, F]
        scalars = scalars + (a_sv * inner + a_ss)
        vectors = vectors + a_vv.unsqueeze(1) * u_vectors
        return scalars, vectors

    def isolated(self, scalars: Tensor) -> Tensor:
        """Scalars (n_atoms, F) of atoms without neighbours after the update (their vectors stay 0).

        Runs :meth:`combine` with zero vectors, on the same shapes as the full update, so that an
        atom without neighbours gets bitwise the same result on both paths.
        """
        zeros = torch.zeros(
            scalars.size(0), 3, self.n_features, dtype=scalars.dtype, device=scalars.device
        )  # [n_atoms, 3, F]
        return self.combine(scalars, zeros, zeros, zeros)[0]


class PaiNNInteraction(torch.nn.Module):
    """One PaiNN layer: message block then update block."""

    def __init__(self, n_features: int, n_basis: int):
        super().__init__()
        self.message = PaiNNMessage(n_features, n_basis)
        self.update = PaiNNUpdate(n_features)

    def forward(
        self,
        scalars: Tensor,
        vectors: Tensor,
        radial: Tensor,
        envelope: Tensor,
        directions: Tensor,
        sender: Tensor,
        receiver: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        scalars, vectors = self.message(scalars, vectors, radial, envelope, directions, sender, receiver)
        return self.update(scalars, vectors)


class PaiNN(EnergyModel):
    """PaiNN energy model: ``forward(graph) -> {"node_energy": (n_atoms,), "energy": (n_graphs,)}``, eV.

    Parameters
    ----------
    config : PaiNNConfig, optional
        Hyperparameters; defaults when omitted.
    """


    def __init__(self, config: Optional[PaiNNConfig] = None):
        config = PaiNNConfig() if config is None else config
        super().__init__(config)
        self.n_features = config.n_features
        self.embedding = torch.nn.Embedding(len(self.species), config.n_features)
        self.radial = BesselBasis(config.n_basis, config.cutoff)
        self.envelope = PolynomialCutoff(config.cutoff, config.envelope_exponent)
        self.interactions = torch.nn.ModuleList(
            [PaiNNInteraction(config.n_features, config.n_basis) for _ in range(config.n_interactions)]
        )
        self.readout = EnergyReadout([config.n_features, config.n_features // 2, 1], torch.nn.SiLU())

    def forward(self, graph: AtomicGraph) -> Dict[str, Tensor]:
        sender = graph.edge_index[0]
        receiver = graph.edge_index[1]
        edge, distances = edge_geometry(graph)  # [n_edges, 3], [n_edges]
        directions = edge / distances.unsqueeze(-1)  # [n_edges, 3]
        radial = self.radial(distances)  # [n_edges, n_basis]
        envelope = self.envelope(distances)  # [n_edges]

        scalars = self.embedding(self.species_index(graph.atomic_numbers))  # [n_atoms, F]
        vectors = torch.zeros(
            scalars.size(0), 3, self.n_features, dtype=scalars.dtype, device=scalars.device
        )  # [n_atoms, 3, F]
        isolated = scalars  # the scalars each atom would have without neighbours
        for interaction in self.interactions:
            scalars, vectors = interaction(scalars, vectors, radial, envelope, directions, sender, receiver)
            isolated = interaction.update.isolated(isolated)

        node_energy = self.readout(scalars, isolated)  # [n_atoms]
        return energy_outputs(node_energy, graph)
