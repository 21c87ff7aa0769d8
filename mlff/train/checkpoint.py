"""Checkpoints: what training writes and deployment reads.

A checkpoint is a plain ``torch.save`` dict (no pickled modules): the model family name, its
config as a plain dict, the potential's ``state_dict`` and free-form metadata. Rebuilding goes
through the model registry, so a checkpoint survives refactoring of the model classes.
"""

import json
import os
import zipfile
from typing import Any, Dict, Optional, Tuple

import torch

from mlff.models.config import config_to_dict
from mlff.models.registry import REGISTRY, build
from mlff.potential import Potential

CHECKPOINT_FORMAT = "mlff-checkpoint-1"
# in a training run's folder: the best weights, and their validation and test errors
BEST = "best.pt"
METRICS = "metrics.json"


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


def deployment_metadata(state: Dict[str, Any], errors: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What a potential deployed from checkpoint ``state`` says about itself: model family and
    hyperparameters, the training data (content hash, file names without their folders) and,
    given the run's ``metrics.json`` contents for these weights, their test and validation errors."""
    metadata: Dict[str, Any] = {"model_family": state["family"], "hyperparameters": state["config"]}
    digest = (state.get("metadata") or {}).get("training_data_sha256")
    if digest is not None:
        metadata["training_data_sha256"] = digest
    files = ((state.get("train_config") or {}).get("data") or {}).get("train")
    if files:  # names only: the hash identifies the data, a path would leak the trainer's machine
        metadata["training_files"] = [os.path.basename(path) for path in files]
    if errors is not None:
        metadata["test_errors"] = errors.get("test")
        metadata["validation_errors"] = errors.get("validation")
    return metadata


def run_errors(checkpoint_path: str, state: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The errors in the run folder's metrics.json when they are those of this checkpoint's
    weights (the run's best.pt, same epoch), else None."""
    metrics_path = os.path.join(os.path.dirname(os.path.abspath(checkpoint_path)), METRICS)
    if os.path.basename(checkpoint_path) != BEST or not os.path.isfile(metrics_path):
        return None
    with open(metrics_path) as handle:
        errors = json.load(handle)
    return errors if errors.get("best_epoch") == (state.get("metadata") or {}).get("epoch") else None


def is_deployed_potential(path: str) -> bool:
    """Whether ``path`` is a deployed TorchScript potential (``mlff deploy``, a training run's
    ``potential.pt``, the shipped ``potentials/*.pt``) rather than a checkpoint."""
    from mlff.export.files import METADATA_NAME

    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(f"/extra/{METADATA_NAME}") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def checkpoint_of_deployed(path: str) -> Dict[str, Any]:
    """The checkpoint dict (as :func:`load_checkpoint` returns) of a deployed TorchScript potential:
    its family, hyperparameters, dtype and weights, statistics included, so that a run can start
    from a shipped or exported potential (``training.initial_weights``: fine-tuning).

    Raises ValueError for a file without model family and hyperparameters in its metadata, or
    whose weights do not fit the model they describe; ``.pt2`` packages hold compiled code, not
    weights, and are refused too.
    """
    from mlff.export import compiled
    from mlff.export.files import METADATA_NAME, _parse_metadata

    if compiled.is_pt2_archive(path):
        raise ValueError(f"{path} is an AOTInductor (.pt2) package: it holds compiled code, not weights; "
                         "start from the checkpoint or the TorchScript (.pt) file it was made from")
    extra = {METADATA_NAME: ""}
    module = torch.jit.load(path, map_location="cpu", _extra_files=extra)  # once: weights and metadata
    info = _parse_metadata(path, extra[METADATA_NAME])
    if "model_family" not in info or "hyperparameters" not in info:
        raise ValueError(f"{path}: its metadata names no model_family and hyperparameters, so its weights cannot be rebuilt")
    potential = Potential(build(info["model_family"], **info["hyperparameters"])).to(getattr(torch, info["dtype"]))
    wanted = potential.state_dict()
    # a plain dict of the model's own entries: a ScriptModule's state_dict also lists the
    # non-persistent constants, and carries version metadata of its own that NormalizedLinear
    # would take for its version 1 layout
    weights = {name: value for name, value in module.potential.state_dict().items() if name in wanted}
    try:
        potential.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"{path}: its weights do not fit the {info['model_family']} model its metadata describes: {error}") from error
    return {
        "format": CHECKPOINT_FORMAT,
        "family": info["model_family"],
        "config": config_to_dict(potential.model.config),
        "dtype": info["dtype"],
        "potential": potential.state_dict(),
        "metadata": {"deployed_file": os.path.basename(path), "test_errors": info.get("test_errors")},
    }
