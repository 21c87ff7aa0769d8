"""Fixtures of the potential tests: a small SchNet for the wrapper's own behaviour, and every
registered family for input checks."""

import pytest
import torch

from mlff import models
from tests.models.conftest import make_potential


@pytest.fixture
def potential64():
    return make_potential("schnet", torch.float64)


@pytest.fixture(params=models.available())
def family(request) -> str:
    return request.param
