"""Potentials: energy models with reference energies, scale/shift, forces, virial and stress."""

from mlff.potential.potential import Potential

__all__ = ["Potential"]
