"""Molecular dynamics from a YAML file: ``mlff md run.yaml [key=value ...]``.

A run is a frozen :class:`MDConfig` (``config.py``) turned into a structure (``structures.py``;
a molecule in TIP3P water and its mixed ML/MM System in ``solvation.py``), an engine that
advances it (``ase_engine.py``, ``openmm_engine.py``: each exposes ``advance`` and ``observe``
-> ``frame.Frame``), and one engine-independent loop (``simulate.py``) that reports, guards
against explosions and summarises (``reporting.py``, ``trajectory.py``).
"""

from mlff.md.config import MDConfig, load_config
from mlff.md.simulate import run, run_file

__all__ = ["MDConfig", "load_config", "run", "run_file"]
