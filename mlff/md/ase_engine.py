"""The ASE engine: ``MLFFCalculator`` with VelocityVerlet (NVE), Langevin (NVT) or NPTBerendsen (NPT),
after an optional minimisation (FIRE)."""

import ase
import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

from mlff.engines.ase import MLFFCalculator
from mlff.md.config import MINIMIZE_TOLERANCE_EV_PER_A
from mlff.md.frame import FS_PER_PS, Frame

#: Berendsen coupling times (fs) and water's compressibility (1/bar) for NPT.
BERENDSEN_TAUT_FS = 100.0
BERENDSEN_TAUP_FS = 1000.0
COMPRESSIBILITY_PER_BAR = 4.57e-5


class ASEEngine:
    """Advances ``atoms`` with an ASE integrator as ``config`` says (see :class:`mlff.md.MDConfig`)."""

    def __init__(self, atoms: ase.Atoms, config):
        self.atoms = atoms.copy()
        self.atoms.calc = MLFFCalculator(config.potential, device=config.device, skin=config.skin)
        if config.minimize_iterations:
            FIRE(self.atoms, logfile=None).run(fmax=MINIMIZE_TOLERANCE_EV_PER_A, steps=config.minimize_iterations)
        rng = np.random.default_rng(config.seed)
        thermalize_momenta(self.atoms, temperature_K=config.temperature_K, rng=rng)
        timestep = config.timestep_fs * units.fs
        if config.ensemble == "nve":
            self.dynamics = VelocityVerlet(self.atoms, timestep)
        elif config.ensemble == "nvt":
            friction = config.friction_per_ps / (FS_PER_PS * units.fs)
            self.dynamics = Langevin(
                self.atoms, timestep, temperature_K=config.temperature_K, friction=friction, fixcm=False, rng=rng
            )
        else:
            if not self.atoms.pbc.all():
                raise ValueError("NPT needs a periodic structure (a water_box, or a file with a cell)")
            self.dynamics = NPTBerendsen(
                self.atoms,
                timestep,
                temperature_K=config.temperature_K,
                pressure_au=config.pressure_bar * units.bar,
                taut=BERENDSEN_TAUT_FS * units.fs,
                taup=BERENDSEN_TAUP_FS * units.fs,
                compressibility_au=COMPRESSIBILITY_PER_BAR / units.bar,
            )
        self.step = 0

    def advance(self, n_steps: int) -> None:
        self.dynamics.run(n_steps)
        self.step += n_steps

    def observe(self) -> Frame:
        atoms = self.atoms
        return Frame(
            step=self.step,
            potential_energy=float(atoms.get_potential_energy()),
            kinetic_energy=float(atoms.get_kinetic_energy()),
            positions=atoms.get_positions(),
            numbers=atoms.get_atomic_numbers(),
            cell=np.array(atoms.get_cell()) if atoms.pbc.all() else None,
        )
