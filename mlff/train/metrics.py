"""Error metrics (MAE, RMSE) of predictions against labels, and their table.

Accumulated over batches: energy per atom (meV/atom), energy per configuration (meV), force
components (meV/Angstrom), stress components (meV/Angstrom^3). A quantity without labels is
absent from the result.
"""

import math
from typing import Dict, List, Mapping, Optional

import numpy as np

#: quantity -> (label in tables, unit); values are stored in eV-based units, shown in meV
QUANTITIES = {
    "energy_per_atom": ("E/atom", "meV/atom"),
    "energy": ("E/config", "meV"),
    "forces": ("F", "meV/A"),
    "stress": ("stress", "meV/A^3"),
}


class ErrorAccumulator:
    """Collects absolute errors per quantity; :meth:`result` gives MAE and RMSE (eV units)."""

    def __init__(self) -> None:
        self._errors: Dict[str, List[np.ndarray]] = {name: [] for name in QUANTITIES}

    def add(self, name: str, error: np.ndarray) -> None:
        self._errors[name].append(np.abs(np.asarray(error, dtype=float)).reshape(-1))

    def errors(self) -> Dict[str, np.ndarray]:
        """The absolute errors collected so far, one flat array per labelled quantity."""
        return {name: np.concatenate(chunks) for name, chunks in self._errors.items() if chunks}

    def result(self) -> Dict[str, float]:
        """``{"<quantity>_mae": ..., "<quantity>_rmse": ...}`` for labelled quantities (eV units)."""
        out: Dict[str, float] = {}
        for name, chunks in self._errors.items():
            if chunks:
                errors = np.concatenate(chunks)
                if errors.size:
                    out[f"{name}_mae"] = float(np.mean(errors))
                    out[f"{name}_rmse"] = float(np.sqrt(np.mean(errors**2)))
        return out


def errors_result(errors: Mapping[str, np.ndarray]) -> Dict[str, float]:
    """MAE and RMSE of absolute errors given per quantity (as :meth:`ErrorAccumulator.errors`)."""
    accumulator = ErrorAccumulator()
    for name, values in errors.items():
        accumulator.add(name, values)
    return accumulator.result()


def format_table(results: Mapping[str, Optional[Mapping[str, float]]]) -> str:
    """A text table: one row per split (e.g. validation, test), MAE and RMSE in meV units."""
    columns = [name for name in QUANTITIES if any(r and f"{name}_mae" in r for r in results.values())]
    header = ["split"] + [f"{QUANTITIES[n][0]} {kind} [{QUANTITIES[n][1]}]" for n in columns for kind in ("MAE", "RMSE")]
    rows = [header]
    for split, result in results.items():
        if not result:
            continue
        row = [split]
        for name in columns:
            for kind in ("mae", "rmse"):
                value = result.get(f"{name}_{kind}")
                row.append("-" if value is None or math.isnan(value) else f"{1000 * value:.3f}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
