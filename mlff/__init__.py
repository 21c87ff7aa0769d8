"""mlff: machine-learned force fields for molecular dynamics.

Importing mlff loads the compiled operator library, so that ``torch.ops.mlff.*`` is available
to eager code, TorchScript files and torch.compile / torch.export graphs. It imports nothing
of the training code: deployed potentials load with this alone.
"""

__version__ = "0.1.0"

from mlff import _ops  # noqa: F401,E402  (loads torch.ops.mlff before anything uses it)
from mlff import neighbors, units  # noqa: E402
from mlff.engines.ase import MLFFCalculator  # noqa: E402
from mlff.export import deploy, load_potential  # noqa: E402
from mlff.potential import Potential  # noqa: E402

__all__ = ["Potential", "MLFFCalculator", "deploy", "load_potential", "neighbors", "units", "__version__"]
