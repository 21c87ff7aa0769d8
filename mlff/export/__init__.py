"""Export: a trained potential as one self-contained file that engines load without the
training code (neighbour list inside, metadata attached): TorchScript (.pt) or AOTInductor (.pt2)."""

from mlff.export.compiled import CompiledPotential
from mlff.export.deployed import DeployedPotential
from mlff.export.files import FORMAT_VERSION, FORMATS, deploy, load_potential, read_metadata

__all__ = [
    "DeployedPotential",
    "CompiledPotential",
    "deploy",
    "load_potential",
    "read_metadata",
    "FORMAT_VERSION",
    "FORMATS",
]
