"""mlff as an openmm-ml potential: ``MLPotential("mlff", modelPath="potential.pt")``.

openmm-ml finds this package through the entry point group ``openmmml.potentials`` and imports
it while ``openmmml`` itself is being imported, without catching errors. So this module is
kept light: it imports neither torch nor mlff (which loads torch and the compiled op library);
they are imported when a potential is created or its forces are added.

Example
-------
>>> from openmmml import MLPotential
>>> potential = MLPotential("mlff", modelPath="potential.pt")
>>> system = potential.createSystem(topology)                       # all atoms ML
>>> mixed = potential.createMixedSystem(topology, mm_system, ligand_atoms, interpolate=True)

Options, given to ``MLPotential(...)`` and overridable per call in ``createSystem`` /
``createMixedSystem``: ``backend`` ("python": ``openmm.PythonForce``, works with any torch, the
default; "torch": openmm-torch ``TorchForce``), ``device`` (python backend), ``dtype``
(``torch.float32`` / ``torch.float64`` or their names; default the potential's own) and
``skin`` (Verlet skin, Angstrom). See :func:`mlff.engines.openmm.create_force`.
"""

import os
from typing import Any, Dict, Iterable, Optional

from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

#: Keyword arguments of ours; openmm-ml's embeddings pass their own options through as well.
OPTIONS = ("backend", "device", "dtype", "skin")
#: Options of openmm-ml's mechanical embedding that reach addForces with ours.
EMBEDDING_OPTIONS = ("linkAtomDistances", "mlLongRange")


class MLFFPotentialImplFactory(MLPotentialImplFactory):
    """Creates :class:`MLFFPotentialImpl` objects for ``MLPotential("mlff", ...)``."""

    def createImpl(self, name: str, modelPath: Optional[str] = None, **args) -> MLPotentialImpl:
        if modelPath is None:
            raise ValueError("MLPotential('mlff') needs modelPath='<deployed potential file>' (from `mlff deploy`)")
        if not os.path.isfile(modelPath):
            raise FileNotFoundError(f"MLPotential('mlff'): potential file {modelPath} does not exist")
        _check_options(args, allow_embedding=False)
        return MLFFPotentialImpl(os.path.abspath(modelPath), args)


class MLFFPotentialImpl(MLPotentialImpl):
    """Adds an mlff Force (see :mod:`mlff.engines.openmm`) to Systems built by openmm-ml.

    Parameters
    ----------
    modelPath : str
        Deployed potential file.
    options : dict
        Defaults for ``backend``, ``device``, ``dtype``, ``skin``.
    """

    def __init__(self, modelPath: str, options: Dict[str, Any]):
        self.modelPath = modelPath
        self.options = dict(options)

    def addForces(self, topology, system, atoms: Optional[Iterable[int]], forceGroup: int, **args) -> None:
        _check_options(args, allow_embedding=True)
        options = {**self.options, **{key: args[key] for key in OPTIONS if key in args}}
        import torch  # noqa: F401  (before anything of openmm-torch; see mlff.engines.openmm)

        from mlff.engines.openmm import create_force, torch_force_survives_copy

        scratch = system.getNumParticles() == 0 and topology.getNumAtoms() > 0
        if options.get("backend") == "torch" and scratch and not torch_force_survives_copy():
            # openmm-ml's interpolation (createMixedSystem(interpolate=True)) builds the ML forces
            # in an empty scratch System and deep-copies them: that would kill the process
            raise RuntimeError(
                "MLPotential('mlff', backend='torch'): openmm-ml copies the ML Force here (interpolate=True), "
                "and this openmm-torch crashes when a TorchForce is copied or deserialised (it was built "
                "against an older OpenMM); use backend='python'"
            )
        if isinstance(options.get("dtype"), str):
            options["dtype"] = getattr(torch, options["dtype"])
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        force = create_force(
            topology,
            self.modelPath,
            atoms=None if atoms is None else list(atoms),
            force_group=forceGroup,
            periodic=periodic,
            **options,
        )
        system.addForce(force)

    def getMLLongRange(self) -> bool:
        """mlff potentials are local: nothing beyond the cutoff."""
        return False


def _check_options(args: Dict[str, Any], allow_embedding: bool) -> None:
    allowed = OPTIONS + (EMBEDDING_OPTIONS if allow_embedding else ())
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise TypeError(f"MLPotential('mlff'): unknown option(s) {unknown}; it accepts {list(OPTIONS)}")
