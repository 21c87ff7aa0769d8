"""The model registry: family name -> (config dataclass, model class), a plain dict.

Each model module defines a frozen config dataclass (deriving from
:class:`mlff.models.config.ModelConfig`) and a ``torch.nn.Module`` whose constructor takes that
config. Adding a family is one import and one entry below.
"""

from typing import Any, Dict, List, Tuple, Type

import torch

from mlff.models.config import ModelConfig, make_config
from mlff.models.local_frame import LocalFrameConfig, LocalFrameModel
from mlff.models.mace import MACE, MACEConfig
from mlff.models.nequip import NequIP, NequIPConfig
from mlff.models.painn import PaiNN, PaiNNConfig
from mlff.models.schnet import SchNet, SchNetConfig

REGISTRY: Dict[str, Tuple[Type[ModelConfig], Type[torch.nn.Module]]] = {
    "local_frame": (LocalFrameConfig, LocalFrameModel),
    "mace": (MACEConfig, MACE),
    "nequip": (NequIPConfig, NequIP),
    "painn": (PaiNNConfig, PaiNN),
    "schnet": (SchNetConfig, SchNet),
}


def available() -> List[str]:
    """Names of the registered model families, sorted."""
    return sorted(REGISTRY)


def _entry(name: str) -> Tuple[Type[ModelConfig], Type[torch.nn.Module]]:
    if name not in REGISTRY:
        raise ValueError(f"unknown model family {name!r}; available: {available()}")
    return REGISTRY[name]


def config_class(name: str) -> Type[ModelConfig]:
    """The config dataclass of family ``name``."""
    return _entry(name)[0]


def build(name: str, **overrides: Any) -> torch.nn.Module:
    """A freshly initialised model of family ``name``, default hyperparameters plus ``overrides``.

    Raises
    ------
    ValueError
        For an unknown family, or an override that is not a hyperparameter of that family.
    """
    config_type, model_type = _entry(name)
    return model_type(make_config(config_type, overrides))
