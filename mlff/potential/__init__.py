"""Potentials: energy models with reference energies, scale/shift, forces, virial and stress."""

from mlff.potential.potential import Potential, rebuilt_copy

__all__ = ["Potential", "rebuilt_copy"]
