"""Engines: mlff potentials inside MD codes (ASE here; OpenMM and LAMMPS beside it)."""
