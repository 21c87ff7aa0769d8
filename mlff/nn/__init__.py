"""Building blocks shared by every model family: radial bases, cutoff envelopes, species
embeddings, scatter operations, dense networks, local frames and the energy readout."""

from mlff.nn.activation import ShiftedSoftplus, ZeroPreservingShiftedSoftplus
from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.embedding import SpeciesIndex
from mlff.nn.frame import LocalFrame, regularized_gram_schmidt
from mlff.nn.mlp import mlp
from mlff.nn.radial import BesselBasis, GaussianBasis
from mlff.nn.readout import EnergyReadout
from mlff.nn.scatter import scatter_sum

__all__ = [
    "PolynomialCutoff",
    "SpeciesIndex",
    "BesselBasis",
    "GaussianBasis",
    "scatter_sum",
    "ShiftedSoftplus",
    "ZeroPreservingShiftedSoftplus",
    "mlp",
    "EnergyReadout",
    "LocalFrame",
    "regularized_gram_schmidt",
]
