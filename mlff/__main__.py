"""``python -m mlff`` is the ``mlff`` command."""

import sys

from mlff.cli import main

sys.exit(main())
