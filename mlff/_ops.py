"""Loading of the compiled operator library (``mlff/_C.so``) into torch.

The library holds no Python code: it registers ``torch.ops.mlff.*`` with the PyTorch
dispatcher when it is loaded. Engines outside Python (C++, LAMMPS) load the same file.
"""

import importlib.util
import os

import torch


def library_path() -> str:
    """Absolute path of the compiled operator library, for loaders outside this package."""
    spec = importlib.util.find_spec("mlff._C")
    if spec is None or spec.origin is None or not os.path.exists(spec.origin):
        raise ImportError(
            "mlff's compiled operator library (mlff/_C.so) is missing: the package was not built. "
            "Install it with `pip install --no-build-isolation .` (or run scripts/setup_env.sh) "
            "in an environment that already has torch."
        )
    return spec.origin


def _load() -> None:
    if hasattr(torch.ops.mlff, "neighbor_list"):
        return
    path = library_path()
    try:
        torch.ops.load_library(path)
    except OSError as error:
        raise ImportError(
            f"mlff's operator library {path} does not load with torch {torch.__version__}: {error}. "
            "It was probably built against another torch; rebuild it with "
            "`pip install --no-build-isolation --force-reinstall --no-deps .`"
        ) from error


_load()
