"""Exponential moving average of a module's weights, kept in a second copy of the module.

After each optimiser step ``shadow = decay * shadow + (1 - decay) * current`` for every
floating parameter; buffers are copied. The copy is what validation, the best checkpoint and
export use. ``decay = 0`` makes the copy follow the weights exactly.
"""

import copy
from typing import Optional

import torch


class ExponentialMovingAverage:
    """Shadow copy of ``module`` (``self.module``), updated by :meth:`update`.

    Parameters
    ----------
    module : torch.nn.Module
        The trained module; its current weights start the average.
    decay : float
    shadow : torch.nn.Module, optional
        A module of the same structure to hold the average (modules holding TorchScript
        functions, as e3nn's do, cannot be deep-copied: pass a freshly built one instead).
    """

    def __init__(self, module: torch.nn.Module, decay: float, shadow: Optional[torch.nn.Module] = None):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        if shadow is None:
            shadow = copy.deepcopy(module)
        else:
            shadow.load_state_dict(module.state_dict())
        self.module = shadow.eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for shadow, current in zip(self.module.parameters(), module.parameters()):
            shadow.mul_(self.decay).add_(current.detach(), alpha=1.0 - self.decay)
        for shadow, current in zip(self.module.buffers(), module.buffers()):
            shadow.copy_(current)
