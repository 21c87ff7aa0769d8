"""Deployed potential files: one archive with the metadata as an extra file.

Two kinds, told apart by content (not by name): a TorchScript file (``.pt``, any device and
dtype) and an AOTInductor package (``.pt2``, compiled C++ for one dtype and
device; see :mod:`mlff.export.compiled`). Loading needs ``import mlff`` (for ``torch.ops.mlff``)
and nothing of the training code.
"""

import datetime
import hashlib
import io
import json
import os
import tempfile
import zipfile
from typing import IO, Any, Dict, Optional, Union

import torch

import mlff
from mlff.export import compiled
from mlff.export.compiled import CompiledPotential
from mlff.export.deployed import DeployedPotential
from mlff.potential import rebuilt_copy

#: Version of the deployed-file layout; files with a newer version are refused.
FORMAT_VERSION = 1
METADATA_NAME = "mlff_metadata.json"
#: File kinds ``deploy`` writes: TorchScript, and an AOTInductor package.
FORMATS = ("pt", "pt2")


def deploy(
    potential: torch.nn.Module, path: str, metadata: Optional[Dict[str, Any]] = None, format: Optional[str] = None
) -> Dict[str, Any]:
    """Write ``potential`` with the neighbour list inside to one file at ``path``.

    Parameters
    ----------
    potential : mlff.Potential
    path : str
        Output file.
    metadata : dict, optional
        Extra JSON-safe entries (model family and hyperparameters, training data hash, test
        errors, ...), merged over the ones derived here.
    format : {"pt", "pt2"}, optional
        "pt": TorchScript; "pt2": AOTInductor package (CPU, the potential's dtype; a C++
        compile of tens of seconds). Default: "pt2" if ``path`` ends in ``.pt2``, else "pt".

    Returns
    -------
    dict : the metadata written
    """
    if format is None:
        format = "pt2" if str(path).endswith(".pt2") else "pt"
    if format not in FORMATS:
        raise ValueError(f"deploy: format must be one of {FORMATS}, got {format!r}")
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
    if format == "pt2":
        text = compiled.metadata_for_package(info)
        # written beside the target, then moved: the archive's root folder is named after the file
        with tempfile.TemporaryDirectory(prefix=".mlff-deploy-", dir=os.path.dirname(os.path.abspath(path))) as folder:
            stem = os.path.splitext(os.path.basename(path))[0] or "potential"
            temporary = os.path.join(folder, f"{stem}.pt2")
            compiled.write_package(potential, temporary, text, METADATA_NAME)
            os.replace(temporary, path)
        return json.loads(text)
    text = json.dumps(info, sort_keys=True)
    # a frozen copy: an MD step needs no parameter gradients, and autograd keeps fewer tensors
    # (no layer inputs kept for weight gradients) when parameters do not require them
    frozen = rebuilt_copy(potential).requires_grad_(False)
    module = torch.jit.script(DeployedPotential(frozen, text))
    stored = io.BytesIO()
    torch.jit.save(module, stored, _extra_files={METADATA_NAME: text})
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        _deflate_archive(stored, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return info


def _deflate_archive(source: IO[bytes], target: str) -> None:
    """Write the zip archive ``source`` to ``target`` with every entry deflated, in the same order.

    ``torch.jit.save`` stores its entries uncompressed. The code and its debug tables deflate
    about threefold, float32 weights by about 15 %: a 64-channel l = 3 MACE shrinks from 1.6 MB
    to 1.1 MB. Every TorchScript reader (``torch.jit.load`` in Python, ``torch::jit::load`` in
    C++ engines) inflates entries as it reads them.
    """
    with zipfile.ZipFile(source) as stored, zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as deflated:
        for entry in stored.infolist():
            deflated.writestr(entry.filename, stored.read(entry.filename))


def read_metadata(path: str) -> Dict[str, Any]:
    """Metadata of a deployed file (.pt or .pt2), checked for format and version (no model is built)."""
    _check_file(path)
    if compiled.is_pt2_archive(path):
        return _parse_metadata(path, _pt2_metadata_text(path))
    extra = {METADATA_NAME: ""}
    try:
        torch.jit.load(path, map_location="cpu", _extra_files=extra)
    except Exception as error:
        raise ValueError(_unreadable(path, error)) from error
    return _parse_metadata(path, extra[METADATA_NAME])


def load_potential(path: str, device: str = "cpu") -> Union[torch.jit.ScriptModule, CompiledPotential]:
    """Load a deployed potential onto ``device``: a scripted :class:`DeployedPotential` from a
    TorchScript file, a :class:`CompiledPotential` from a ``.pt2`` package; both are called the
    same way. Parameters are frozen (``requires_grad`` False): forces and stress need no
    parameter gradients, and autograd then keeps fewer tensors.

    Raises FileNotFoundError for a missing file and ValueError for a corrupt, truncated or
    foreign file, one written by an incompatible mlff, or a package compiled for another device.
    """
    _check_file(path)
    if compiled.is_pt2_archive(path):
        text = _pt2_metadata_text(path)
        return compiled.load_package(path, _parse_metadata(path, text), text, device)
    extra = {METADATA_NAME: ""}
    try:
        module = torch.jit.load(path, map_location=device, _extra_files=extra)
    except Exception as error:
        raise ValueError(_unreadable(path, error)) from error
    _parse_metadata(path, extra[METADATA_NAME])
    for parameter in module.parameters():  # files written before parameters were frozen
        parameter.requires_grad_(False)
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
        f"{path} is not a loadable mlff potential (corrupt, truncated, or not a TorchScript or .pt2 file): "
        f"{first_line}. "
        "Re-create it with `mlff deploy CHECKPOINT -o FILE`."
    )


def _pt2_metadata_text(path: str) -> str:
    try:
        return compiled.read_pt2_extra_file(path, METADATA_NAME) or ""
    except Exception as error:  # zipfile raises several kinds on damaged archives
        raise ValueError(_unreadable(path, error)) from error


def _parse_metadata(path: str, text: str) -> Dict[str, Any]:
    if not text:
        kind = "an AOTInductor (.pt2) package" if compiled.is_pt2_archive(path) else "a TorchScript file"
        raise ValueError(f"{path} is {kind} but not an mlff potential (no {METADATA_NAME} inside)")
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
