"""The atomic graph: the one data contract that flows from readers to models to engines."""

from mlff.graph.atomic_graph import AtomicGraph, collate, from_atoms, with_neighbors

__all__ = ["AtomicGraph", "from_atoms", "collate", "with_neighbors"]
