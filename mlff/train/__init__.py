"""Training: fitting potentials to reference data (checkpoints are the hand-off to export).

``train(load_config("config.yaml"))`` is ``mlff train config.yaml``; the pieces (data, statistics,
loss, EMA, metrics) are small modules here. Importing this package does not import the trainer:
import :mod:`mlff.train.trainer` (or use :func:`train`) for that. Under torchrun the same call
trains on several processes (:mod:`mlff.train.distributed`); :mod:`mlff.train.logs` and
:mod:`mlff.train.plots` write what a run shows (log.csv, TensorBoard, PNGs).
"""

from mlff.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "train", "load_config"]


def train(config, resume: bool = False, **kwargs):
    """See :func:`mlff.train.trainer.train`."""
    from mlff.train.trainer import train as _train

    return _train(config, resume=resume, **kwargs)


def load_config(path: str, overrides=()):
    """See :func:`mlff.train.config.load_config`."""
    from mlff.train.config import load_config as _load

    return _load(path, overrides)
