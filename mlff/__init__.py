"""mlff: machine-learned force fields for molecular dynamics.

Importing mlff loads the compiled operator library, so that ``torch.ops.mlff.*`` is available
to eager code, TorchScript files and torch.compile / torch.export graphs.
"""

from mlff import _ops  # noqa: F401  (loads torch.ops.mlff before anything uses it)
from mlff import neighbors, units

__version__ = "0.1.0"

__all__ = ["neighbors", "units", "__version__"]
