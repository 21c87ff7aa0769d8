"""Weight averaging of checkpoints ("model soup", Wortsman et al. 2022).

Runs fine-tuned from one set of weights with different data orders end near each other in
weight space, and the mean of their weights can predict better than each of them, at the cost
of a single model (measure it: on rMD17 aspirin, 15 fine-tunes of a converged model averaged to
12.41 meV/A against 12.45 for the start). Only checkpoints of one architecture (family, hyperparameters, species,
dtype) can be averaged; the result is a checkpoint like any other (``mlff eval``, ``mlff deploy``,
``training.initial_weights``).
"""

import collections
import copy
import os
from typing import Any, Dict, List, Sequence

import torch

from mlff.train.checkpoint import load_checkpoint, save_checkpoint


def average_states(states: Sequence[Dict[str, torch.Tensor]], names: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of floating-point entries of ``state_dict``s with the same keys and
    shapes; other entries (integer tables) must be equal and are kept. ``names`` label the states
    in error messages."""
    first = states[0]
    averaged: Dict[str, torch.Tensor] = collections.OrderedDict()
    for key, value in first.items():
        for state, name in zip(states[1:], names[1:]):
            if key not in state or state[key].shape != value.shape:
                raise ValueError(f"{name} and {names[0]} hold different models (entry {key!r} differs in presence or shape)")
        if value.is_floating_point():
            averaged[key] = torch.stack([state[key] for state in states]).mean(dim=0).to(value.dtype)
        else:
            for state, name in zip(states[1:], names[1:]):
                if not torch.equal(state[key], value):
                    raise ValueError(f"{name} and {names[0]} differ in the integer entry {key!r}: not the same model")
            averaged[key] = value.clone()
    extra = [key for state in states[1:] for key in state if key not in first]
    if extra:
        raise ValueError(f"entries {sorted(set(extra))} are missing from {names[0]}: not the same model")
    if hasattr(first, "_metadata"):  # modules' state-dict versions, which loading may need
        averaged._metadata = copy.deepcopy(first._metadata)  # type: ignore[attr-defined]
    return averaged


def average_checkpoints(paths: Sequence[str], output: str) -> Dict[str, Any]:
    """Write to ``output`` the checkpoint whose weights are the mean of those of ``paths`` (the
    moving-average weights each run validated with); returns its metadata."""
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two checkpoints (got {len(paths)})")
    rebuilt = [load_checkpoint(path) for path in paths]  # each checked to be a readable checkpoint
    potential = rebuilt[0][0]
    loaded = [state for _, state in rebuilt]
    first = loaded[0]
    for path, state in zip(paths[1:], loaded[1:]):
        for field in ("family", "config", "dtype"):
            if state[field] != first[field]:
                raise ValueError(f"{path} and {paths[0]} differ in {field} ({state[field]!r} vs {first[field]!r}): only one architecture can be averaged")
    metadata: Dict[str, Any] = {"averaged_from": [os.path.abspath(path) for path in paths]}
    data = {state.get("metadata", {}).get("training_data_sha256") for state in loaded}
    if len(data) == 1 and None not in data:
        metadata["training_data_sha256"] = data.pop()
    potential.load_state_dict(average_states([state["potential"] for state in loaded], list(paths)))
    save_checkpoint(potential, output, metadata)
    return metadata


def ingredients(paths: Sequence[str]) -> List[str]:
    """Expand folders to their ``last.pt`` (the end of each run's schedule)."""
    return [os.path.join(path, "last.pt") if os.path.isdir(path) else path for path in paths]
