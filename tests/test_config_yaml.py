"""Config YAML reads numbers as YAML 1.2 does, and everything else as yaml.safe_load."""

import pytest
import yaml

from mlff import config_yaml


@pytest.mark.parametrize(
    "text, value",
    [("1e-12", 1e-12), ("-2E5", -2e5), ("+3e+2", 300.0), (".5e1", 5.0), ("1.0e-3", 1e-3), ("0.25", 0.25)],
)
def test_exponent_forms_are_floats(text, value):
    parsed = config_yaml.load(text)
    assert isinstance(parsed, float) and parsed == value


@pytest.mark.parametrize("text", ["12", "abc", "1e", "1e-3x", "e5", "true", "null", "[1, 2]", "{a: 1e-3, b: x}"])
def test_everything_else_is_read_as_safe_load_reads_it(text):
    expected = yaml.safe_load(text)
    if isinstance(expected, dict):
        expected["a"] = 1e-3  # the one YAML 1.2 float inside the mapping
    assert config_yaml.load(text) == expected


def test_plain_pyyaml_is_left_unchanged():
    config_yaml.load("1e-3")
    assert yaml.safe_load("1e-3") == "1e-3"


def test_malformed_yaml_still_raises_yaml_error():
    with pytest.raises(yaml.YAMLError):
        config_yaml.load("a: [1, 2")
