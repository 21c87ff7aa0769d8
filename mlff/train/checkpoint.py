"""Checkpoints: what training writes and deployment reads.

A checkpoint is a plain ``torch.save`` dict (no pickled modules): the model family name, its
config as a plain dict, the potential's ``state_dict`` and free-form metadata. Rebuilding goes
through the model registry, so a checkpoint survives refactoring of the model classes.
"""

import os
from typing import Any, Dict, Optional, Tuple

import torch

from mlff.models.config import config_to_dict
from mlff.models.registry import REGISTRY, build
from mlff.potential import Potential

CHECKPOINT_FORMAT = "mlff-checkpoint-1"


def model_family(model: torch.nn.Module) -> str:
    """Registry name of a model's family."""
    for name, (_, model_class) in REGISTRY.items():
        if type(model) is model_class:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered mlff model family")


def save_checkpoint(potential: Potential, path: str, metadata: Optional[Dict[str, Any]] = None, **extra: Any) -> None:
    """Write ``potential`` (and any ``extra`` training state) to ``path`` atomically.

    The file is written next to its destination and renamed into place, so an interrupted
    write never leaves a truncated checkpoint behind.
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "family": model_family(potential.model),
        "config": config_to_dict(potential.model.config),
        "dtype": str(potential.scale.dtype).replace("torch.", ""),
        "potential": potential.state_dict(),
        "metadata": dict(metadata or {}),
        **extra,
    }
    temporary = f"{path}.tmp-{os.getpid()}"
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: str, map_location: str = "cpu") -> Tuple[Potential, Dict[str, Any]]:
    """Rebuild the potential of a checkpoint (in eval mode); returns it and the whole checkpoint dict."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path} is not a readable mlff checkpoint (corrupt, truncated or another format): {error}") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an mlff checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    config = dict(state["config"])
    model = build(state["family"], **config)
    potential = Potential(model)
    potential.to(getattr(torch, state["dtype"]))
    potential.load_state_dict(state["potential"])
    return potential.eval(), state
