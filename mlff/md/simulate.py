"""The MD loop, common to both engines: advance by report intervals, observe, guard, report.

The guard stops a run whose energies or positions stop being finite, whose engine raises, or
whose potential or total energy moves by more than ``max_energy_change_per_atom_eV`` per atom
from its first value: the last good frame goes to ``outputs.last_frame`` (extxyz), what happened
is printed, and the run returns status 1.
"""

import sys
from typing import Optional, Sequence

import ase.io

from mlff.md.config import MDConfig, load_config
from mlff.md.frame import Frame
from mlff.md.reporting import EnergyLog, Progress, plot, summary
from mlff.md.structures import build_structure
from mlff.md.trajectory import open_trajectory


def run_file(path: str, overrides: Sequence[str] = ()) -> int:
    """``mlff md``: load the configuration at ``path`` (with ``key=value`` overrides) and run it."""
    return run(load_config(path, overrides))


def make_engine(atoms, config: MDConfig):
    """The engine object of ``config.engine`` (imported only when used)."""
    if config.engine == "ase":
        from mlff.md.ase_engine import ASEEngine

        return ASEEngine(atoms, config)
    from mlff.md.openmm_engine import OpenMMEngine

    return OpenMMEngine(atoms, config)


def explosion(frame: Frame, first: Frame, limit: float) -> Optional[str]:
    """Why ``frame`` is not a good continuation of the run that started at ``first`` (None if it is)."""
    if not frame.is_finite():
        return "non-finite energy or positions"
    for name in ("potential_energy", "total_energy"):
        change = abs(getattr(frame, name) - getattr(first, name)) / frame.n_atoms
        if change > limit:
            what = name.replace("_", " ")
            return f"{what} changed by {change:.3g} eV/atom (limit: max_energy_change_per_atom_eV = {limit:g})"
    return None


def run(config: MDConfig, stream=None) -> int:
    """Run ``config``; return 0 on success, 1 when the guard stopped the run."""
    import torch

    # TorchScript's profiling executor re-specialises a deployed graph whenever the number of
    # edges changes, nearly every MD step. The ASE and PythonForce routes switch it off per call
    # (mlff.engines); openmm-torch's TorchForce calls the module from C++, out of their reach,
    # so for it the process-wide switch is set before the first call and restored afterwards.
    uses_torch_force = config.engine == "openmm" and config.backend == "torch"
    profiling = torch._C._jit_set_profiling_executor(False) if uses_torch_force else None
    try:
        engine = make_engine(build_structure(config.structure, config.seed), config)
        return _run(engine, config, stream)
    finally:
        if profiling is not None:
            torch._C._jit_set_profiling_executor(profiling)


def _run(engine, config: MDConfig, stream=None) -> int:
    stream = stream or sys.stderr
    first = engine.observe()
    if not first.is_finite():
        raise ValueError("the starting structure has a non-finite energy")
    outputs = config.outputs
    log = EnergyLog(outputs.csv, config.timestep_fs, config.ensemble == "npt")
    trajectory = None
    if outputs.trajectory:
        trajectory = open_trajectory(outputs.trajectory, first, config.report_interval, config.timestep_fs)
    progress = Progress(config.steps, config.timestep_fs, stream, config.progress)
    good, failure = first, None
    log.append(first)
    if trajectory:
        trajectory.write(first)
    try:
        while engine.step < config.steps:
            try:
                engine.advance(min(config.report_interval, config.steps - engine.step))
                frame = engine.observe()
            except Exception as error:  # the engine itself gave up (NaN coordinates, ...)
                failure = f"the engine raised {type(error).__name__}: {error}"
                break
            failure = explosion(frame, first, config.max_energy_change_per_atom_eV)
            if failure:
                break
            good = frame
            log.append(frame)
            if trajectory:
                trajectory.write(frame)
            progress.update(engine.step)
    finally:
        ns_per_day = progress.ns_per_day(engine.step)
        progress.close()
        log.close()
        if trajectory:
            trajectory.close()
    if outputs.plot and len(log.rows) > 0:
        plot(log, outputs.plot, config.ensemble, first.n_atoms)
    if failure:
        ase.io.write(outputs.last_frame, good.to_atoms(), format="extxyz")
        print(
            f"mlff md: stopped before step {engine.step}: {failure}. The last good frame (step {good.step}) "
            f"is in {outputs.last_frame}; try a smaller timestep_fs or check the potential and structure.",
            file=stream,
        )
        return 1
    print(summary(log, config.ensemble, first.n_atoms, engine.step, ns_per_day), file=stream)
    return 0
