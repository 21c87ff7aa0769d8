"""Constants that stay exact when a model changes dtype.

Models are built in the default dtype (float32) and turned into float64 with ``.double()``,
which casts every buffer: a constant first rounded to float32 would stay rounded, and
equivariance would then hold only to ~1e-8 in float64. Blocks that own constants (Clebsch-
Gordan coefficients, coupling bases) derive from :class:`ExactConstants`: each constant is kept
in float64 and copied, rounded once, into its buffer after every dtype or device change
(``torch.nn.Module._apply`` is what ``.to``, ``.double``, ``.float`` and ``.cuda`` go through).
The buffers are not persistent: they are rebuilt from the hyperparameters, never loaded from a
checkpoint.
"""

from typing import Dict

import torch
from torch import Tensor


class ExactConstants(torch.nn.Module):
    """Base class of modules with constant buffers computed in float64."""

    __jit_ignored_attributes__ = ["_exact_values"]

    def __init__(self):
        super().__init__()
        self._exact_values: Dict[str, Tensor] = {}

    def register_constant(self, name: str, value: Tensor) -> None:
        """Register buffer ``name`` holding ``value`` (float64), in the default dtype for now."""
        exact = value.detach().to(torch.float64).contiguous()
        self._exact_values[name] = exact
        self.register_buffer(name, exact.to(torch.get_default_dtype()), persistent=False)

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        with torch.no_grad():
            for name, exact in self._exact_values.items():
                buffer = getattr(self, name)
                buffer.copy_(exact)  # one rounding, from float64, onto the buffer's dtype and device
        return result
