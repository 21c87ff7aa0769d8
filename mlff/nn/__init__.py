"""Building blocks shared by every model family: radial bases, cutoff envelopes, species
embeddings and scatter operations."""

from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.embedding import SpeciesIndex
from mlff.nn.radial import BesselBasis, GaussianBasis
from mlff.nn.scatter import scatter_sum

__all__ = ["PolynomialCutoff", "SpeciesIndex", "BesselBasis", "GaussianBasis", "scatter_sum"]
