"""Training: fitting potentials to reference data (checkpoints are the hand-off to export)."""

from mlff.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint"]
