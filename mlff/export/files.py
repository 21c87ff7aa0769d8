"""Deployed potential files: one TorchScript archive with the metadata as an extra file.

Loading needs ``import mlff`` (for ``torch.ops.mlff``) and nothing of the training code.
"""

import datetime
import hashlib
import json
import os
from typing import Any, Dict, Optional

import torch

import mlff
from mlff.export.deployed import DeployedPotential

#: Version of the deployed-file layout; files with a newer version are refused.
FORMAT_VERSION = 1
METADATA_NAME = "mlff_metadata.json"


def deploy(potential: torch.nn.Module, path: str, metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Script ``potential`` with the neighbour list inside and write it to ``path``.

    Parameters
    ----------
    potential : mlff.Potential
    path : str
        Output file (``.pt``).
    metadata : dict, optional
        Extra JSON-safe entries (model family and hyperparameters, training data hash, test
        errors, ...), merged over the ones derived here.

    Returns
    -------
    dict : the metadata written
    """
    info: Dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "mlff_version": mlff.__version__,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "species": [int(z) for z in potential.species],
        "cutoff": float(potential.cutoff),
        "dtype": str(potential.scale.dtype).replace("torch.", ""),
        "units": {"length": "Angstrom", "energy": "eV", "forces": "eV/Angstrom", "stress": "eV/Angstrom^3"},
    }
    info.update(metadata or {})
    text = json.dumps(info, sort_keys=True)
    module = torch.jit.script(DeployedPotential(potential.eval(), text))
    temporary = f"{path}.tmp-{os.getpid()}"
    torch.jit.save(module, temporary, _extra_files={METADATA_NAME: text})
    os.replace(temporary, path)
    return info


def read_metadata(path: str) -> Dict[str, Any]:
    """Metadata of a deployed file, checked for format and version (no model is built)."""
    _check_file(path)
    extra = {METADATA_NAME: ""}
    try:
        torch.jit.load(path, map_location="cpu", _extra_files=extra)
    except Exception as error:
        raise ValueError(_unreadable(path, error)) from error
    return _parse_metadata(path, extra[METADATA_NAME])


def load_potential(path: str, device: str = "cpu") -> torch.jit.ScriptModule:
    """Load a deployed potential (a scripted :class:`DeployedPotential`) onto ``device``.

    Raises FileNotFoundError for a missing file and ValueError for a corrupt, truncated or
    foreign file, or one written by an incompatible mlff.
    """
    _check_file(path)
    extra = {METADATA_NAME: ""}
    try:
        module = torch.jit.load(path, map_location=device, _extra_files=extra)
    except Exception as error:
        raise ValueError(_unreadable(path, error)) from error
    _parse_metadata(path, extra[METADATA_NAME])
    return module.eval()


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file (e.g. the training data, for provenance)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"potential file {path} does not exist")


def _unreadable(path: str, error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"{path} is not a loadable mlff potential (corrupt, truncated, or not a TorchScript file): {first_line}. "
        "Re-create it with `mlff deploy CHECKPOINT -o FILE`."
    )


def _parse_metadata(path: str, text: str) -> Dict[str, Any]:
    if not text:
        raise ValueError(f"{path} is a TorchScript file but not an mlff potential (no {METADATA_NAME} inside)")
    try:
        info = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: its mlff metadata is not valid JSON ({error}); the file is damaged") from error
    version = info.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(
            f"{path} was written by mlff {info.get('mlff_version', '?')} with file format {version}; this mlff "
            f"({mlff.__version__}) reads formats 1..{FORMAT_VERSION}: upgrade mlff or re-deploy the checkpoint"
        )
    return info
