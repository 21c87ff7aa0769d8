"""Shared pytest set-up: torch is imported before anything that may import openmm."""

import torch  # noqa: F401  (must precede openmm; see ../shared/docs/environment.md)

import mlff  # noqa: F401  (loads torch.ops.mlff)
