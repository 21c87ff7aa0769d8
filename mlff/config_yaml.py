"""Reading config YAML with numbers as people write them.

PyYAML follows YAML 1.1, where a float needs a decimal point: ``1e-3`` is read as the string
``"1e-3"`` while ``1.0e-3`` is a float. YAML 1.2 (and every config a MACE or NequIP user has
written) reads both as numbers, so the training and MD configs load through :func:`load`, which
adds the YAML 1.2 float forms to PyYAML's safe loader. Nothing else changes: strings, booleans,
integers and ``null`` are read as by ``yaml.safe_load``.
"""

import re
from typing import IO, Any, Union

import yaml


class _SafeLoaderWithYaml12Floats(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3``, ``+2E5`` and ``.5e1`` as floats."""


#: Exponent forms without a decimal point, which YAML 1.1's float pattern leaves out.
_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_SafeLoaderWithYaml12Floats.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))


def load(stream: Union[str, IO[str]]) -> Any:
    """Parse one YAML document (text or open file) like ``yaml.safe_load``, with YAML 1.2 floats.

    Raises ``yaml.YAMLError`` for text that is not YAML, as ``yaml.safe_load`` does.
    """
    return yaml.load(stream, Loader=_SafeLoaderWithYaml12Floats)
