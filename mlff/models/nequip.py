"""NequIP: E(3)-equivariant tensor-product convolutions with gated nonlinearities
(Batzner et al., Nat. Commun. 13, 2453, 2022).

Atom features are irreps (channels x l = 0..l_max, both parities). Each interaction, for
edges (sender i, receiver j) with ``r_ij = r_j - r_i``:

    h_i'  = Linear(h_i)
    m_j   = 1/sqrt(avg_num_neighbors) sum_i TP_uvu(h_i', Y(r_ij); R(|r_ij|))   # convolution
    h_j   = Gate( Linear(m_j) + SelfConnection_{z_j}(h_j) )

with Y the spherical harmonics of the edge direction up to l_max, R a radial MLP of Bessel
functions times a polynomial envelope (so messages vanish smoothly at the cutoff), and the
self-connection a species-dependent linear map. Readout: two linear maps of the scalars of
the last layer (channels -> 16 -> 1). The tensor product is e3nn's ``uvu`` product (same
numbers as ``e3nn.o3.TensorProduct``), evaluated by :mod:`mlff.nn.equivariant.tensor_product`.

Differences from the reference implementation, each documented where it is made:

- The last interaction computes only the even scalars (the readout uses nothing else); the
  energy is the same function, for less work.
- An atom without neighbours would get a nonzero energy through the self-connections; the
  readout subtracts the energy of the same atoms with every edge removed (same shapes, so an
  isolated atom's two terms are bitwise equal and its node energy is exactly zero). This costs
  one pass of the atom-wise (not edge-wise) parts of the network.
- ``parity=False`` keeps only features of the parity of the spherical harmonics, (-1)^l
  (fewer features; the model stays E(3)-equivariant), rather than NequIP's SO(3)-only variant.
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
from mlff.nn.equivariant.gate import Gate
from mlff.nn.equivariant.species import SpeciesPartition, partition_by_species
from mlff.nn.equivariant.species_linear import SpeciesLinear
from mlff.nn.equivariant.tensor_product import uvu_paths
from mlff.nn.radial import BesselBasis


@dataclasses.dataclass(frozen=True)
class NequIPConfig(ModelConfig):
    """NequIP hyperparameters (defaults close to the paper's and nequip's example configs).

    Parameters
    ----------
    cutoff : float
        Angstrom (default 5.0).
    species : tuple of int
        Atomic numbers (default: every element).
    n_channels : int
        Multiplicity of every irrep of the features (nequip ``num_features``: 32).
    l_max : int
        Highest degree of the spherical harmonics and features (paper: 1 to 3; default 2).
    parity : bool
        True: features of both parities for each l (nequip's default). False: only parity
        (-1)^l.
    n_interactions : int
        Number of interaction (convolution) layers (nequip ``num_layers``: 4).
    n_basis : int
        Bessel functions of the radial basis (8).
    envelope_exponent : int
        Degree p of the polynomial envelope (6).
    radial_hidden : tuple of int
        Hidden sizes of the radial MLPs (nequip: 2 layers of 64).
    readout_hidden : int
        Scalars between the last layer and the energy (nequip: 16).
    avg_num_neighbors : float
        Convolutions divide their sums by sqrt(avg_num_neighbors); set it from the training
        data (mean number of edges per atom at the cutoff). The default is about that of
        liquid water at 5 Angstrom.
    """

    n_channels: int = 32
    l_max: int = 2
    parity: bool = True
    n_interactions: int = 4
    n_basis: int = 8
    envelope_exponent: int = 6
    radial_hidden: Tuple[int, ...] = (64, 64)
    readout_hidden: int = 16
    avg_num_neighbors: float = 50.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "radial_hidden", tuple(int(n) for n in self.radial_hidden))
        require_positive(
            self,
            n_channels=self.n_channels,
            n_interactions=self.n_interactions,
            n_basis=self.n_basis,
            envelope_exponent=self.envelope_exponent,
            readout_hidden=self.readout_hidden,
            avg_num_neighbors=self.avg_num_neighbors,
        )
        if self.l_max < 0:
            raise ValueError(f"NequIPConfig: l_max must be >= 0, got {self.l_max}")
        if any(n <= 0 for n in self.radial_hidden):
            raise ValueError(f"NequIPConfig: radial_hidden sizes must be positive, got {self.radial_hidden}")


def hidden_irreps(n_channels: int, l_max: int, parity: bool) -> o3.Irreps:
    """``n_channels x (l, p)`` for l = 0..l_max and p = +-1 (``parity``) or p = (-1)^l."""
    irreps = []
    for l in range(l_max + 1):
        parities = (1, -1) if parity else ((-1) ** l,)
        for p in parities:
            irreps.append((n_channels, (l, p)))
    return o3.Irreps(irreps)


class NequIPInteraction(torch.nn.Module):
    """One NequIP layer: convolution, linear map, self-connection, gate.

    Parameters
    ----------
    irreps_in : o3.Irreps
        Features entering the layer.
    irreps_sh : o3.Irreps
        Spherical harmonics of the edges.
    irreps_target : o3.Irreps
        Features wanted out; irreps the convolution cannot reach from ``irreps_in`` are left
        out (``irreps_out`` says what is produced).
    n_species : int
    radial_sizes : List[int]
        ``[n_basis, hidden...]`` of the radial MLP.
    scale : float
        Factor on the sum of messages, 1/sqrt(avg_num_neighbors).

    Shapes: ``forward(h (n_atoms, irreps_in.dim), sh (n_edges, irreps_sh.dim),
    radial (n_edges, n_basis), edge_index (2, n_edges), partition) -> (n_atoms, irreps_out.dim)``.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_target: o3.Irreps,
        n_species: int,
        radial_sizes: List[int],
        scale: float,
    ):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        reachable = {ir for _, _, ir in uvu_paths(self.irreps_in, irreps_sh, irreps_target)}
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_target if ir.l == 0 and ir in reachable])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_target if ir.l > 0 and ir in reachable])
        # Even gates (SiLU) whenever an even scalar can be produced, as in NequIP.
        gate_ir = o3.Irrep("0e") if o3.Irrep("0e") in reachable else o3.Irrep("0o")
        gates = o3.Irreps([(mul, gate_ir) for mul, _ in gated])
        self.gate = Gate(scalars, gates, gated)
        self.linear_in = o3.Linear(self.irreps_in, self.irreps_in)
        self.convolution = EdgeConvolution(self.irreps_in, irreps_sh, self.gate.irreps_in, radial_sizes, scale)
        self.linear_out = o3.Linear(self.convolution.irreps_out, self.gate.irreps_in)
        self.self_connection = SpeciesLinear(self.irreps_in, self.gate.irreps_in, n_species)
        self.irreps_out = self.gate.irreps_out

    def forward(self, h: Tensor, sh: Tensor, radial: Tensor, edge_index: Tensor, partition: SpeciesPartition) -> Tensor:
        messages = self.convolution(self.linear_in(h), sh, radial, edge_index)  # (n_atoms, conv irreps)
        return self.gate(self.linear_out(messages) + self.self_connection(h, partition))


class NequIP(EnergyModel):
    """NequIP energy model: ``forward(graph) -> {"node_energy": (n_atoms,), "energy": (n_graphs,)}``, eV.

    Parameters
    ----------
    config : NequIPConfig, optional
        Hyperparameters; defaults when omitted.
    """


    def __init__(self, config: Optional[NequIPConfig] = None):
        config = NequIPConfig() if config is None else config
        super().__init__(config)
        self.n_species = len(self.species)
        irreps_sh = o3.Irreps.spherical_harmonics(config.l_max)
        self.edge_embedding = EdgeEmbedding(
            BesselBasis(config.n_basis, config.cutoff),
            PolynomialCutoff(config.cutoff, config.envelope_exponent),
            irreps_sh,
        )
        self.embedding = torch.nn.Embedding(self.n_species, config.n_channels)
        radial_sizes = [config.n_basis] + list(config.radial_hidden)
        scale = config.avg_num_neighbors**-0.5
        irreps = o3.Irreps(f"{config.n_channels}x0e")
        hidden = hidden_irreps(config.n_channels, config.l_max, config.parity)
        last = o3.Irreps(f"{config.n_channels}x0e")  # the readout reads even scalars only
        layers = []
        for t in range(config.n_interactions):
            target = last if t == config.n_interactions - 1 else hidden
            layer = NequIPInteraction(irreps, irreps_sh, target, self.n_species, radial_sizes, scale)
            layers.append(layer)
            irreps = layer.irreps_out
        self.interactions = torch.nn.ModuleList(layers)
        self.readout_hidden = o3.Linear(irreps, o3.Irreps(f"{config.readout_hidden}x0e"))
        self.readout_out = o3.Linear(o3.Irreps(f"{config.readout_hidden}x0e"), o3.Irreps("0e"))

    def _atom_energies(
        self, species: Tensor, partition: SpeciesPartition, sh: Tensor, radial: Tensor, edge_index: Tensor
    ) -> Tensor:
        """Readout (n_atoms,) after all interactions, before the isolated-atom subtraction."""
        h = self.embedding(species)  # (n_atoms, n_channels)
        for interaction in self.interactions:
            h = interaction(h, sh, radial, edge_index, partition)
        return self.readout_out(self.readout_hidden(h)).squeeze(1)

    def forward(self, graph: AtomicGraph) -> Dict[str, Tensor]:
        species = self.species_index(graph.atomic_numbers)  # (n_atoms,)
        partition = partition_by_species(species, self.n_species)
        vectors = edge_vectors(graph.positions, graph.cell, graph.edge_index, graph.cell_shifts, graph.batch)
        radial, sh = self.edge_embedding(vectors)  # (n_edges, n_basis), (n_edges, sh)

        energies = self._atom_energies(species, partition, sh, radial, graph.edge_index)
        # The same atoms with no edges: what the self-connections alone give.
        no_sh = sh.new_zeros(0, sh.size(1))
        no_radial = radial.new_zeros(0, radial.size(1))
        no_edges = graph.edge_index.new_zeros(2, 0)
        isolated = self._atom_energies(species, partition, no_sh, no_radial, no_edges)
        node_energy = energies - isolated  # (n_atoms,)
        return energy_outputs(node_energy, graph)
