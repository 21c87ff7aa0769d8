"""Export: a trained potential as one self-contained file that engines load without the
training code (neighbour list inside, metadata attached)."""

from mlff.export.deployed import DeployedPotential
from mlff.export.files import FORMAT_VERSION, deploy, load_potential, read_metadata

__all__ = ["DeployedPotential", "deploy", "load_potential", "read_metadata", "FORMAT_VERSION"]
