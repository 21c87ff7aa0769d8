"""The OpenMM engine: a System of the structure's atoms (masses from the elements) with the mlff
Force, or with ``ml_atoms: solute`` the mixed ML/MM System of a solvated molecule
(:mod:`mlff.md.solvation`), integrated by VerletIntegrator (NVE) or LangevinMiddleIntegrator
(NVT, NPT with a MonteCarloBarostat), after an optional energy minimisation.

OpenMM's nm and kJ/mol are converted to Angstrom and eV here, through :mod:`mlff.units`.
"""

import torch  # noqa: F401,I001  (torch before openmm: see ../shared/docs/environment.md)

import ase
import numpy as np
import openmm
import openmm.app
import openmm.unit as u

from mlff.engines.openmm import create_force
from mlff.md.frame import Frame
from mlff.md.config import MINIMIZE_TOLERANCE_EV_PER_A
from mlff.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM


def topology_of(atoms: ase.Atoms) -> openmm.app.Topology:
    """A one-residue Topology with the elements (and, if periodic, the box) of ``atoms``."""
    topology = openmm.app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for index, z in enumerate(atoms.get_atomic_numbers()):
        element = openmm.app.Element.getByAtomicNumber(int(z))
        topology.addAtom(f"{element.symbol}{index}", element, residue)
    if atoms.pbc.all():
        topology.setPeriodicBoxVectors(_vectors(np.asarray(atoms.get_cell()) / NM_TO_ANGSTROM))
    return topology


def _vectors(rows_nm: np.ndarray):
    return [openmm.Vec3(*map(float, row)) for row in rows_nm] * u.nanometer


class OpenMMEngine:
    """Advances ``atoms`` with OpenMM as ``config`` says (see :class:`mlff.md.MDConfig`)."""

    def __init__(self, atoms: ase.Atoms, config):
        system = self._system(atoms, config)
        periodic = bool(atoms.pbc.all())
        timestep = config.timestep_fs * u.femtosecond
        temperature = config.temperature_K * u.kelvin
        if config.ensemble == "nve":
            integrator = openmm.VerletIntegrator(timestep)
        else:
            integrator = openmm.LangevinMiddleIntegrator(temperature, config.friction_per_ps / u.picosecond, timestep)
            integrator.setRandomNumberSeed(config.seed)
        if config.ensemble == "npt":
            if not periodic:
                raise ValueError("NPT needs a periodic structure (a water_box, solvated, or a file with a cell)")
            barostat = openmm.MonteCarloBarostat(config.pressure_bar * u.bar, temperature, config.barostat_interval)
            barostat.setRandomNumberSeed(config.seed)
            system.addForce(barostat)
        platform = openmm.Platform.getPlatformByName(config.platform)
        self.context = openmm.Context(system, integrator, platform)
        self.integrator = integrator
        self.context.setPositions(atoms.get_positions() / NM_TO_ANGSTROM * u.nanometer)
        if system.getNumConstraints():
            self.context.applyConstraints(integrator.getConstraintTolerance())
        if config.minimize_iterations:
            # L-BFGS until the root-mean-square force component is below the tolerance, kJ/mol/nm
            tolerance = MINIMIZE_TOLERANCE_EV_PER_A * EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM
            openmm.LocalEnergyMinimizer.minimize(self.context, tolerance, config.minimize_iterations)
        self.context.setVelocitiesToTemperature(temperature, config.seed)
        self.numbers = atoms.get_atomic_numbers()
        self.periodic = periodic
        self.degrees_of_freedom = degrees_of_freedom(system)
        self.step = 0

    @staticmethod
    def _system(atoms: ase.Atoms, config) -> openmm.System:
        """The System of ``config.ml_atoms``: the potential on every atom, or on the solute only."""
        if config.ml_atoms == "solute":
            from mlff.md.solvation import mixed_system

            options = dict(backend=config.backend, device=config.device, skin=config.skin)
            return mixed_system(atoms, config.potential, config.mm_cutoff_nm, solute_charges=config.solute_charges, **options)[1]
        topology = topology_of(atoms)
        system = openmm.System()
        for atom in topology.atoms():
            system.addParticle(atom.element.mass)
        if atoms.pbc.all():
            system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
        options = dict(backend=config.backend, device=config.device, skin=config.skin)
        system.addForce(create_force(topology, config.potential, **options))
        return system

    def advance(self, n_steps: int) -> None:
        self.integrator.step(n_steps)
        self.step += n_steps

    def observe(self) -> Frame:
        state = self.context.getState(getPositions=True, getEnergy=True, enforcePeriodicBox=self.periodic)
        kj_per_mol = u.kilojoule_per_mole
        positions = np.asarray(state.getPositions(asNumpy=True).value_in_unit(u.nanometer)) * NM_TO_ANGSTROM
        cell = None
        if self.periodic:
            cell = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(u.nanometer)) * NM_TO_ANGSTROM
        return Frame(
            step=self.step,
            potential_energy=state.getPotentialEnergy().value_in_unit(kj_per_mol) / EV_TO_KJ_PER_MOL,
            kinetic_energy=state.getKineticEnergy().value_in_unit(kj_per_mol) / EV_TO_KJ_PER_MOL,
            positions=positions,
            numbers=self.numbers,
            cell=cell,
            degrees_of_freedom=self.degrees_of_freedom,
        )


def degrees_of_freedom(system: openmm.System) -> int:
    """3 per particle with mass, less one per constraint and 3 for a CMMotionRemover (as OpenMM counts)."""
    dof = 3 * sum(1 for i in range(system.getNumParticles()) if system.getParticleMass(i) > 0 * u.dalton)
    dof -= system.getNumConstraints()
    if any(isinstance(force, openmm.CMMotionRemover) for force in system.getForces()):
        dof -= 3
    return dof
