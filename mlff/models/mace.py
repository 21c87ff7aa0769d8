"""MACE: higher-body-order equivariant message passing (Batatia et al., NeurIPS 2022).

Each layer t builds, for every atom j, an *atomic basis* from one-particle messages along the
edges (sender i, receiver j) with ``r_ij = r_j - r_i``,

    A_j = Linear( 1/avg_num_neighbors sum_i TP_uvu( Linear(h_i), Y(r_ij); R(|r_ij|) ) )

(k channels, each a copy of V = 0e+1o+...+l_max, spherical harmonics Y of the edge
direction, a radial MLP R of Bessel functions times a polynomial envelope), then raises it to
body order correlation+1 with the symmetric contraction
(:mod:`mlff.nn.equivariant.symmetric_contraction`, species-dependent weights):

    h_j = Linear( B(A_j; z_j) ) + SelfConnection_{z_j}(h_j)      (no self-connection at t = 0)

and reads an energy out of h_j. The node energy is the sum of the readouts of all layers:
linear maps of the scalars for every layer but the last, an MLP (channels -> 16 -> 1, SiLU) for
the last, whose features are scalars only.

An atom without neighbours has A = 0, hence B = 0 (the product basis has no constant term),
h = 0 in every layer and every readout (bias-free, SiLU(0) = 0) exactly zero: no subtraction
is needed. That relies on the first layer having no self-connection, as in the paper's model
(mace-torch's ``RealAgnosticInteractionBlock`` first; its later default adds a residual first
layer). Features use the parity of the spherical harmonics, (-1)^l, as in MACE. The tensor
product is e3nn's ``uvu`` product (:mod:`mlff.nn.equivariant.tensor_product`).
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import torch
from e3nn import o3
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.models.base import EnergyModel, energy_outputs
from mlff.models.config import ModelConfig, require_positive
from mlff.neighbors import edge_vectors
from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.equivariant.convolution import EdgeConvolution
from mlff.nn.equivariant.edge_embedding import EdgeEmbedding
from mlff.nn.equivariant.mlp import scalar_mlp
from mlff.nn.equivariant.species import SpeciesPartition, partition_by_species
from mlff.nn.equivariant.species_linear import SpeciesLinear
from mlff.nn.equivariant.symmetric_contraction import SymmetricContraction
from mlff.nn.radial import BesselBasis


@dataclasses.dataclass(frozen=True)
class MACEConfig(ModelConfig):
    """MACE hyperparameters; defaults are the paper's and mace-torch's "medium" model
    (hidden irreps 128x0e+128x1o, l_max 3, correlation 3, 2 layers), except where noted.

    Parameters
    ----------
    cutoff : float
        Angstrom (default 5.0, mace-torch's ``r_max``).
    species : tuple of int
        Atomic numbers (default: every element).
    n_channels : int
        Channels k of the hidden features and of the atomic basis (128).
    hidden_l_max : int
        Hidden features are ``k x (0e + 1o + ... + hidden_l_max)`` between layers (1 gives
        128x0e+128x1o; 0 gives MACE's invariant "small" model). The last layer keeps scalars
        only.
    l_max : int
        Highest degree of the spherical harmonics and of the atomic basis A (``max_ell``: 3).
    correlation : int
        Highest power of A in the product basis: body order correlation + 1 (3).
    n_interactions : int
        Number of layers (2).
    n_basis : int
        Bessel functions of the radial basis (8).
    envelope_exponent : int
        Degree p of the polynomial envelope (5, mace-torch's ``num_cutoff_basis``).
    radial_hidden : tuple of int
        Hidden sizes of the radial MLPs ((64, 64, 64)).
    readout_hidden : int
        Hidden scalars of the last layer's readout MLP (16).
    avg_num_neighbors : float
        Convolutions divide their sums by it; set it from the training data (mean number of
        edges per atom at the cutoff). The default is about that of liquid water at 5 Angstrom.
    """

    n_channels: int = 128
    hidden_l_max: int = 1
    l_max: int = 3
    correlation: int = 3
    n_interactions: int = 2
    n_basis: int = 8
    envelope_exponent: int = 5
    radial_hidden: Tuple[int, ...] = (64, 64, 64)
    readout_hidden: int = 16
    avg_num_neighbors: float = 50.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "radial_hidden", tuple(int(n) for n in self.radial_hidden))
        require_positive(
            self,
            n_channels=self.n_channels,
            correlation=self.correlation,
            n_interactions=self.n_interactions,
            n_basis=self.n_basis,
            envelope_exponent=self.envelope_exponent,
            readout_hidden=self.readout_hidden,
            avg_num_neighbors=self.avg_num_neighbors,
        )
        if self.l_max < 0 or self.hidden_l_max < 0:
            raise ValueError(f"MACEConfig: l_max and hidden_l_max must be >= 0, got {self.l_max}, {self.hidden_l_max}")
        if self.hidden_l_max > self.l_max:
            raise ValueError(f"MACEConfig: hidden_l_max ({self.hidden_l_max}) cannot exceed l_max ({self.l_max})")
        if any(n <= 0 for n in self.radial_hidden):
            raise ValueError(f"MACEConfig: radial_hidden sizes must be positive, got {self.radial_hidden}")


def _natural_irreps(n_channels: int, l_max: int) -> o3.Irreps:
    """``n_channels x (0e + 1o + 2e + ...)`` up to l_max: the parity of the spherical harmonics."""
    return (o3.Irreps.spherical_harmonics(l_max) * n_channels).sort().irreps.simplify()


class MACEInteraction(torch.nn.Module):
    """One MACE layer: atomic basis, symmetric contraction, self-connection, energy readout.

    Parameters
    ----------
    irreps_in : o3.Irreps
        Features entering the layer.
    irreps_sh : o3.Irreps
        Spherical harmonics of the edges (0e+1o+..+l_max).
    irreps_out : o3.Irreps
        Features produced (``k x`` scalars and, except in the last layer, higher l).
    n_species : int
    correlation : int
    radial_sizes : List[int]
        ``[n_basis, hidden...]`` of the radial MLP.
    scale : float
        Factor on the sum of messages, 1/avg_num_neighbors.
    self_connection : SpeciesLinear or None
        Species-dependent linear map ``irreps_in -> irreps_out`` added to the output (all
        layers but the first, whose input is the bare species embedding), or None.
    readout : torch.nn.Module
        Maps the output features (n_atoms, irreps_out.dim) to energies (n_atoms, 1).

    Shapes: ``forward(h (n_atoms, irreps_in.dim), sh, radial, edge_index, partition) ->
    (h (n_atoms, irreps_out.dim), node_energy (n_atoms,))``.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_out: o3.Irreps,
        n_species: int,
        correlation: int,
        radial_sizes: List[int],
        scale: float,
        self_connection: Optional[SpeciesLinear],
        readout: torch.nn.Module,
    ):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        n_channels = self.irreps_out.count("0e")
        irreps_basis = _natural_irreps(n_channels, o3.Irreps(irreps_sh).lmax)  # A: k x (0e+1o+..)
        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)
        self.convolution = EdgeConvolution(self.irreps_in, irreps_sh, irreps_basis, radial_sizes, scale)
        self.linear_basis = o3.Linear(self.convolution.irreps_out, irreps_basis)
        self.product = SymmetricContraction(irreps_basis, self.irreps_out, correlation, n_species)
        self.linear_product = o3.Linear(self.irreps_out, self.irreps_out)
        self.self_connection = self_connection
        self.readout = readout

    def forward(
        self, h: Tensor, sh: Tensor, radial: Tensor, edge_index: Tensor, partition: SpeciesPartition
    ) -> Tuple[Tensor, Tensor]:
        messages = self.convolution(self.linear_up(h), sh, radial, edge_index)  # (n_atoms, paths)
        basis = self.linear_basis(messages)  # A: (n_atoms, k x V)
        out = self.linear_product(self.product(basis, partition))  # (n_atoms, irreps_out.dim)
        if self.self_connection is not None:
            out = out + self.self_connection(h, partition)
        return out, self.readout(out).squeeze(1)


class ScalarReadout(torch.nn.Module):
    """Energy from the even scalars of a feature vector: an MLP (bias-free, normalized SiLU).

    Parameters
    ----------
    irreps_in : o3.Irreps
        Features; only their ``0e`` part is read (it must come first).
    hidden : List[int]
        Hidden sizes; ``[]`` makes it linear.

    Shapes: ``forward(h (n, irreps_in.dim)) -> (n, 1)``.
    """

    def __init__(self, irreps_in: o3.Irreps, hidden: List[int]):
        super().__init__()
        irreps_in = o3.Irreps(irreps_in)
        first_mul, first_ir = irreps_in[0]
        if first_ir != o3.Irrep("0e") or irreps_in.count("0e") != first_mul:
            raise ValueError(f"ScalarReadout: the even scalars of {irreps_in} must form its first block")
        self.n_scalars = first_mul
        self.network = scalar_mlp([first_mul] + list(hidden) + [1])

    def forward(self, h: Tensor) -> Tensor:
        return self.network(h[:, : self.n_scalars])


class MACE(EnergyModel):
    """MACE energy model: ``forward(graph) -> {"node_energy": (n_atoms,), "energy": (n_graphs,)}``, eV.

    Parameters
    ----------
    config : MACEConfig, optional
        Hyperparameters; defaults when omitted.
    """


    def __init__(self, config: Optional[MACEConfig] = None):
        config = MACEConfig() if config is None else config
        super().__init__(config)
        self.n_species = len(self.species)
        irreps_sh = o3.Irreps.spherical_harmonics(config.l_max)
        self.edge_embedding = EdgeEmbedding(
            BesselBasis(config.n_basis, config.cutoff),
            PolynomialCutoff(config.cutoff, config.envelope_exponent),
            irreps_sh,
        )
        k = config.n_channels
        self.embedding = torch.nn.Embedding(self.n_species, k)
        radial_sizes = [config.n_basis] + list(config.radial_hidden)
        scale = 1.0 / config.avg_num_neighbors
        irreps = o3.Irreps(f"{k}x0e")
        layers = []
        for t in range(config.n_interactions):
            last = t == config.n_interactions - 1
            irreps_out = _natural_irreps(k, 0 if last else config.hidden_l_max)
            readout = ScalarReadout(irreps_out, [config.readout_hidden] if last else [])
            self_connection = SpeciesLinear(irreps, irreps_out, self.n_species) if t > 0 else None
            layers.append(
                MACEInteraction(
                    irreps,
                    irreps_sh,
                    irreps_out,
                    self.n_species,
                    config.correlation,
                    radial_sizes,
                    scale,
                    self_connection,
                    readout,
                )
            )
            irreps = irreps_out
        self.interactions = torch.nn.ModuleList(layers)

    def forward(self, graph: AtomicGraph) -> Dict[str, Tensor]:
        species = self.species_index(graph.atomic_numbers)  # (n_atoms,)
        partition = partition_by_species(species, self.n_species)
        vectors = edge_vectors(graph.positions, graph.cell, graph.edge_index, graph.cell_shifts, graph.batch)
        radial, sh = self.edge_embedding(vectors)  # (n_edges, n_basis), (n_edges, sh)

        h = self.embedding(species)  # (n_atoms, k)
        node_energy = torch.zeros_like(graph.positions[:, 0])  # (n_atoms,)
        for interaction in self.interactions:
            h, layer_energy = interaction(h, sh, radial, graph.edge_index, partition)
            node_energy = node_energy + layer_energy
        return energy_outputs(node_energy, graph)
