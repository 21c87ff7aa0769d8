"""Energy models of atomic systems.

A model is a ``torch.nn.Module`` with attributes ``cutoff: float`` (Angstrom) and
``species: List[int]`` (atomic numbers) whose ``forward(graph: AtomicGraph)`` returns
``{"node_energy": (n_atoms,), "energy": (n_graphs,)}`` in eV: raw interaction energies, before
reference energies and scale/shift (:class:`mlff.Potential` adds those, and the derivatives).
An atom without neighbours has exactly zero node energy. Message-passing models keep their
layers in ``model.interactions`` (a ``torch.nn.ModuleList``).

``available()`` lists the families; ``build(name, **overrides)`` makes one from its config.
"""

from mlff.models.config import ModelConfig
from mlff.models.registry import available, build, config_class

__all__ = ["ModelConfig", "available", "build", "config_class"]
