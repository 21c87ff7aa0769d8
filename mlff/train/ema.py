"""Exponential moving average of a module's weights, kept in a second copy of the module.

After the n-th optimiser step ``shadow = d_n * shadow + (1 - d_n) * current`` for every
floating parameter, with ``d_n = min(decay, (1 + n) / (10 + n))``: the average warms up, so that
the first epochs' copy is not dominated by the initial (random) weights -- with a fixed 0.99 they
would still weigh 15 % after 190 steps (torch_ema's ``use_num_updates``, which mace-torch uses).
Buffers are copied. The copy is what validation, the best checkpoint and export use.
``decay = 0`` makes the copy follow the weights exactly.
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
        self.updates = 0  # optimiser steps averaged so far (sets the warm-up; checkpointed)
        if shadow is None:
            shadow = copy.deepcopy(module)
        else:
            shadow.load_state_dict(module.state_dict())
        self.module = shadow.eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update applies."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        decay = self.current_decay()
        self.updates += 1
        for shadow, current in zip(self.module.parameters(), module.parameters()):
            shadow.mul_(decay).add_(current.detach(), alpha=1.0 - decay)
        for shadow, current in zip(self.module.buffers(), module.buffers()):
            shadow.copy_(current)
