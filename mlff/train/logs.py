"""The per-epoch record of a training run: ``log.csv`` and, when installed, TensorBoard events.

Both are fed the same rows (one dict per epoch: ``epoch``, ``learning_rate``, ``train_*``,
``validation_*``, ``seconds``; losses in their squared label units, errors in eV units).
``log.csv`` is rewritten whole every epoch from the checkpoint's history, so a resumed run's
log matches its checkpoint; TensorBoard's events go to ``output_dir/tensorboard`` under tags
``train/loss``, ``validation/forces_mae``, ``learning_rate``, ... with the epoch as step, and a
resumed run hides the events of epochs it repeats.
"""

import csv
import math
import os
from typing import Dict, List, Optional, Sequence

TENSORBOARD_DIR = "tensorboard"


def write_csv(path: str, history: Sequence[Dict[str, float]]) -> None:
    """The whole history, rewritten atomically; columns in order of first appearance."""
    columns: List[str] = []
    for row in history:
        columns.extend(key for key in row if key not in columns)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(temporary, path)


def read_csv(path: str) -> List[Dict[str, float]]:
    """Rows of a ``log.csv`` as floats (empty cells become NaN)."""
    with open(path, newline="") as handle:
        return [{key: float(value) if value not in ("", None) else math.nan for key, value in row.items()} for row in csv.DictReader(handle)]


def tensorboard_tag(column: str) -> Optional[str]:
    """TensorBoard tag of a log column (``train_loss`` -> ``train/loss``); None for ``epoch``."""
    if column == "epoch":
        return None
    for prefix in ("train", "validation"):
        if column.startswith(prefix + "_"):
            return f"{prefix}/{column[len(prefix) + 1:]}"
    return column


class TensorBoardLog:
    """Scalars of every row, with the epoch as step, in ``directory``.

    Parameters
    ----------
    directory : str
    first_epoch : int
        The first epoch this run will write: events a previous run wrote for it and later are
        hidden (a resumed run repeats at most the epoch it was killed in).
    """

    def __init__(self, directory: str, first_epoch: int = 1):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=directory, purge_step=first_epoch if first_epoch > 1 else None)

    def write(self, row: Dict[str, float]) -> None:
        step = int(row["epoch"])
        for column, value in row.items():
            tag = tensorboard_tag(column)
            if tag is not None and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()  # a killed run keeps its events

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(output_dir: str, first_epoch: int = 1) -> Optional[TensorBoardLog]:
    """A :class:`TensorBoardLog` in ``output_dir/tensorboard``, or None when TensorBoard is not installed."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return None
    return TensorBoardLog(os.path.join(output_dir, TENSORBOARD_DIR), first_epoch)
