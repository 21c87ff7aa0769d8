"""What a run reports: a progress bar on stderr, a CSV of energies, a PNG, a closing summary.

CSV columns (one row per report): ``step``, ``time_ps``, ``potential_energy_eV``,
``kinetic_energy_eV``, ``total_energy_eV``, ``temperature_K``, and ``volume_A3`` for NPT.
"""

import csv
import sys
import time
from typing import List, Optional, TextIO

from mlff.md.frame import FS_PER_PS, Frame

#: Seconds per day, for ns/day.
SECONDS_PER_DAY = 86400.0
#: Picoseconds per nanosecond.
PS_PER_NS = 1000.0

COLUMNS = ["step", "time_ps", "potential_energy_eV", "kinetic_energy_eV", "total_energy_eV", "temperature_K"]


def columns(with_volume: bool) -> List[str]:
    """The CSV header of a run (with ``volume_A3`` for NPT)."""
    return COLUMNS + (["volume_A3"] if with_volume else [])


def row(frame: Frame, timestep_fs: float, with_volume: bool) -> List[float]:
    values = [frame.step, frame.step * timestep_fs / FS_PER_PS, frame.potential_energy, frame.kinetic_energy,
              frame.total_energy, frame.temperature]
    return values + ([frame.volume] if with_volume else [])


class Progress:
    """A one-line progress bar with the simulation speed in ns/day, redrawn on stderr."""

    WIDTH = 30

    def __init__(self, total_steps: int, timestep_fs: float, stream: Optional[TextIO] = None, enabled: bool = True):
        self.total_steps = total_steps
        self.timestep_fs = timestep_fs
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.start = time.perf_counter()

    def ns_per_day(self, steps: int) -> float:
        elapsed = max(time.perf_counter() - self.start, 1e-12)
        return steps * self.timestep_fs / FS_PER_PS / PS_PER_NS * SECONDS_PER_DAY / elapsed

    def update(self, steps: int) -> None:
        if not self.enabled:
            return
        filled = int(self.WIDTH * steps / self.total_steps)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {steps}/{self.total_steps} steps  {self.ns_per_day(steps):.3g} ns/day")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class EnergyLog:
    """Rows of the CSV, kept in memory (for the plot and summary) and written as they come."""

    def __init__(self, path: Optional[str], timestep_fs: float, with_volume: bool):
        self.timestep_fs = timestep_fs
        self.with_volume = with_volume
        self.header = columns(with_volume)
        self.rows: List[List[float]] = []
        self._handle = open(path, "w", newline="") if path else None
        if self._handle:
            self._writer = csv.writer(self._handle)
            self._writer.writerow(self.header)

    def append(self, frame: Frame) -> None:
        values = row(frame, self.timestep_fs, self.with_volume)
        self.rows.append(values)
        if self._handle:
            self._writer.writerow([f"{v:.10g}" for v in values])
            self._handle.flush()

    def column(self, name: str) -> List[float]:
        index = self.header.index(name)
        return [r[index] for r in self.rows]

    def close(self) -> None:
        if self._handle:
            self._handle.close()


def plot(log: EnergyLog, path: str, ensemble: str, n_atoms: int) -> None:
    """Energies and temperature vs time; for NVE the total-energy drift, for NPT the volume."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time_ps = log.column("time_ps")
    extra = {"nve": "drift", "npt": "volume"}.get(ensemble)
    figure, axes = plt.subplots(3 if extra else 2, 1, sharex=True, figsize=(7, 8 if extra else 6))
    # absolute potential energies (thousands of eV) would flatten every curve: show changes,
    # with the kinetic energy as is and potential and total relative to the first total energy
    reference = log.column("total_energy_eV")[0]
    for label in ("potential", "kinetic", "total"):
        values = log.column(f"{label}_energy_eV")
        axes[0].plot(time_ps, values if label == "kinetic" else [e - reference for e in values], label=label)
    axes[0].set_ylabel(f"energy (eV)\nrelative to E_total(0) = {reference:.6g} eV")
    axes[0].legend()
    axes[1].plot(time_ps, log.column("temperature_K"))
    axes[1].set_ylabel("temperature (K)")
    if extra == "drift":
        total = log.column("total_energy_eV")
        axes[2].plot(time_ps, [1000.0 * (e - total[0]) / n_atoms for e in total])  # meV per atom
        axes[2].set_ylabel("E_total - E_total(0)\n(meV/atom)")
    elif extra == "volume":
        axes[2].plot(time_ps, log.column("volume_A3"))
        axes[2].set_ylabel("volume (A^3)")
    axes[-1].set_xlabel("time (ps)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary(log: EnergyLog, ensemble: str, n_atoms: int, steps: int, ns_per_day: float) -> str:
    """The closing lines of a run: steps, speed, and the NVE drift or mean temperature (and volume)."""
    lines = [f"{steps} steps ({steps * log.timestep_fs / FS_PER_PS:.4g} ps) of {n_atoms} atoms, {ns_per_day:.3g} ns/day"]
    if ensemble == "nve":
        total = log.column("total_energy_eV")
        duration = log.column("time_ps")[-1] - log.column("time_ps")[0]
        drift = (total[-1] - total[0]) / n_atoms * 1000.0  # meV/atom
        rate = f", {drift / duration:.3g} meV/atom/ps" if duration > 0 else ""
        lines.append(f"total-energy drift {drift:.4g} meV/atom{rate}")
    else:
        temperatures = log.column("temperature_K")[1:] or log.column("temperature_K")
        lines.append(f"mean temperature {sum(temperatures) / len(temperatures):.4g} K")
        if ensemble == "npt":
            volumes = log.column("volume_A3")
            lines.append(f"volume {volumes[0]:.5g} -> {volumes[-1]:.5g} A^3")
    return "\n".join(lines)
