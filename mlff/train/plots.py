"""PNG figures of a training run: learning curves and parity plots.

- :func:`learning_curves_figure`: per epoch, the training and validation losses, the
  validation errors (MAE of energy per atom in meV/atom, of force components in meV/Angstrom,
  of stress in meV/Angstrom^3) and the learning rate, all on log scales; a dashed line marks
  the start of the second stage.
- :func:`parity_figure`: predicted against reference energy per atom (eV/atom), force
  components (eV/Angstrom) and stress components (eV/Angstrom^3) when labelled, with the
  y = x line and MAE / RMSE in each title.

Figures are built with matplotlib's object API on the Agg canvas: no pyplot, no global backend
switch, no display needed. matplotlib is optional: :func:`available` says whether it is there.
"""

import math
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

#: error columns of log.csv shown in the learning curves: column -> (label, unit)
ERROR_CURVES = {
    "validation_energy_per_atom_mae": ("E/atom MAE", "meV/atom"),
    "validation_forces_mae": ("F MAE", "meV/A"),
    "validation_stress_mae": ("stress MAE", "meV/A^3"),
}
LOSS_CURVES = {"train_loss": "training", "validation_loss": "validation"}
#: quantity of :func:`mlff.train.evaluate.predictions` -> (panel title, unit)
PARITY_PANELS = {
    "energy_per_atom": ("energy per atom", "eV/atom"),
    "forces": ("force components", "eV/A"),
    "stress": ("stress components", "eV/A^3"),
}


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(n_panels: int, width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * n_panels, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


def _column(history: Sequence[Mapping[str, float]], name: str) -> np.ndarray:
    return np.array([float(row.get(name, math.nan)) for row in history], dtype=float)


def learning_curves_figure(history: Sequence[Mapping[str, float]]):
    """Figure of the rows of ``log.csv`` (see :mod:`mlff.train.logs`): losses, validation
    errors (x1000: meV units) and the learning rate against the epoch."""
    figure, (losses, errors, rates) = _figure(3, 4.5, 3.6)
    epochs = _column(history, "epoch")
    for column, label in LOSS_CURVES.items():
        values = _column(history, column)
        if np.isfinite(values).any():
            losses.plot(epochs, values, marker=".", label=label)
    losses.set(yscale="log", xlabel="epoch", ylabel="loss", title="losses")
    for column, (label, unit) in ERROR_CURVES.items():
        values = _column(history, column)
        if np.isfinite(values).any():
            errors.plot(epochs, 1000.0 * values, marker=".", label=f"{label} [{unit}]")
    errors.set(yscale="log", xlabel="epoch", ylabel="validation error (meV units)", title="validation errors")
    rates.plot(epochs, _column(history, "learning_rate"), marker=".")
    rates.set(yscale="log", xlabel="epoch", ylabel="learning rate", title="learning rate")
    stage = _column(history, "stage")
    if (stage == 2).any():
        start = epochs[np.argmax(stage == 2)]
        for axes in (losses, errors, rates):
            axes.axvline(start, color="grey", linestyle="--", linewidth=1, label="second stage")
    for axes in (losses, errors):
        if axes.get_lines():
            axes.legend(fontsize="small")
    return figure


def parity_figure(values: Mapping[str, Tuple[np.ndarray, np.ndarray]], title: str = ""):
    """Figure of predicted against reference values (:func:`mlff.train.evaluate.predictions`),
    one panel per labelled quantity of :data:`PARITY_PANELS`."""
    shown = [name for name in PARITY_PANELS if name in values and np.asarray(values[name][0]).size]
    if not shown:
        raise ValueError("no labelled energies, forces or stresses to plot")
    figure, panels = _figure(len(shown), 4.0, 4.0)
    for axes, name in zip(panels, shown):
        reference, predicted = (np.asarray(v, dtype=float).reshape(-1) for v in values[name])
        label, unit = PARITY_PANELS[name]
        error = predicted - reference
        mae, rmse = float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error**2)))
        axes.scatter(reference, predicted, s=4 if reference.size < 5000 else 1, alpha=0.6, rasterized=True)
        low = float(min(reference.min(), predicted.min()))
        high = float(max(reference.max(), predicted.max()))
        pad = 0.05 * (high - low) if high > low else 1e-3
        axes.plot([low - pad, high + pad], [low - pad, high + pad], color="black", linewidth=0.8)
        axes.set(
            xlim=(low - pad, high + pad),
            ylim=(low - pad, high + pad),
            aspect="equal",
            xlabel=f"reference [{unit}]",
            ylabel=f"predicted [{unit}]",
            title=f"{label}\nMAE {1000 * mae:.3g}  RMSE {1000 * rmse:.3g} m{unit}",
        )
        axes.ticklabel_format(useOffset=False)
    if title:
        figure.suptitle(title)
    return figure


def save(figure, path: str) -> str:
    """Write ``figure`` to ``path`` as PNG; returns the path."""
    figure.savefig(path, format="png", dpi=120)
    return path


def write_learning_curves(history: Sequence[Mapping[str, float]], path: str) -> Optional[str]:
    """:func:`learning_curves_figure` written to ``path``; None without matplotlib or rows."""
    if not history or not available():
        return None
    return save(learning_curves_figure(history), path)


def write_parity(values: Mapping[str, Tuple[np.ndarray, np.ndarray]], path: str, title: str = "") -> Optional[str]:
    """:func:`parity_figure` written to ``path``; None without matplotlib or labelled values."""
    if not available() or not any(np.asarray(v[0]).size for name, v in values.items() if name in PARITY_PANELS):
        return None
    return save(parity_figure(values, title), path)


def describe(paths: Dict[str, Optional[str]]) -> str:
    """One line naming the figures written (for the run's summary)."""
    written = [path for path in paths.values() if path]
    return "plots: " + ", ".join(written) if written else "plots: none (matplotlib is not installed)"
