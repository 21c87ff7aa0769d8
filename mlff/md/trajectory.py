"""Trajectory writers, chosen by file extension: ``.dcd`` (OpenMM's DCDFile) or extxyz.

Both take :class:`mlff.md.frame.Frame` objects, so either engine can write either format.
"""

import os

import ase.io

from mlff.units import NM_TO_ANGSTROM


def open_trajectory(path: str, first: "Frame", interval: int, timestep_fs: float):  # noqa: F821
    """A writer with ``write(frame)`` and ``close()`` for ``path`` (truncated first)."""
    if os.path.splitext(path)[1].lower() == ".dcd":
        return DCDTrajectory(path, first, interval, timestep_fs)
    return ExtxyzTrajectory(path)


class ExtxyzTrajectory:
    """Extended XYZ, one frame per report, with the step and energies in the comment line."""

    def __init__(self, path: str):
        self.path = path
        open(path, "w").close()

    def write(self, frame) -> None:
        atoms = frame.to_atoms()
        atoms.info.update(step=frame.step, potential_energy=frame.potential_energy, kinetic_energy=frame.kinetic_energy)
        ase.io.write(self.path, atoms, format="extxyz", append=True)

    def close(self) -> None:
        pass


class DCDTrajectory:
    """DCD through ``openmm.app.DCDFile`` (positions and box in nm)."""

    def __init__(self, path: str, first, interval: int, timestep_fs: float):
        import torch  # noqa: F401  (torch before openmm: see ../shared/docs/environment.md)
        import openmm.app
        import openmm.unit

        topology = openmm.app.Topology()
        residue = topology.addResidue("MOL", topology.addChain())
        for index, z in enumerate(first.numbers):
            element = openmm.app.Element.getByAtomicNumber(int(z))
            topology.addAtom(f"{element.symbol}{index}", element, residue)
        if first.cell is not None:
            topology.setPeriodicBoxVectors(first.cell / NM_TO_ANGSTROM * openmm.unit.nanometer)
        self._handle = open(path, "wb")
        self._file = openmm.app.DCDFile(self._handle, topology, timestep_fs * openmm.unit.femtosecond, first.step, interval)
        self._box = lambda cell: [openmm.Vec3(*row) for row in cell / NM_TO_ANGSTROM] * openmm.unit.nanometer

    def write(self, frame) -> None:
        box = None if frame.cell is None else self._box(frame.cell)
        self._file.writeModel(frame.positions / NM_TO_ANGSTROM, periodicBoxVectors=box)

    def close(self) -> None:
        self._handle.close()
