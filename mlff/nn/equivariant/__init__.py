"""Equivariant building blocks shared by the spherical-tensor models (NequIP, MACE): edge
embedding (radial features and spherical harmonics), tensor-product convolution, gated
nonlinearity, species-dependent linear maps, and the symmetric contraction with its coupling
bases. Features use e3nn's layout: ``(n, irreps.dim)``, each block ``mul x ir`` stored as
``(mul, 2l+1)``."""

from mlff.nn.equivariant.convolution import EdgeConvolution
from mlff.nn.equivariant.coupling import symmetric_coupling_basis
from mlff.nn.equivariant.edge_embedding import EdgeEmbedding
from mlff.nn.equivariant.gate import Gate
from mlff.nn.equivariant.mlp import NormalizedLinear, scalar_mlp
from mlff.nn.equivariant.species import SpeciesPartition, partition_by_species
from mlff.nn.equivariant.species_linear import SpeciesLinear
from mlff.nn.equivariant.symmetric_contraction import SymmetricContraction
from mlff.nn.equivariant.tensor_product import EdgeTensorProduct, uvu_paths

__all__ = [
    "EdgeConvolution",
    "EdgeEmbedding",
    "EdgeTensorProduct",
    "Gate",
    "NormalizedLinear",
    "SpeciesLinear",
    "SpeciesPartition",
    "SymmetricContraction",
    "partition_by_species",
    "scalar_mlp",
    "symmetric_coupling_basis",
    "uvu_paths",
]
