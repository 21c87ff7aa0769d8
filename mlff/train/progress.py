"""A one-line progress display with live losses (no dependency).

On a terminal the line is redrawn in place after every step; elsewhere (logs, pipes) nothing is
drawn per step and the trainer's per-epoch summary line is the record.
"""

import sys
import time
from typing import Mapping, Optional, TextIO


class ProgressLine:
    """``label [#####.....] step/total  loss ...  it/s`` on ``stream`` (stderr by default)."""

    def __init__(self, label: str, total: int, stream: Optional[TextIO] = None, width: int = 20):
        self.label = label
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.perf_counter()
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False

    def update(self, step: int, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        filled = int(self.width * step / self.total)
        rate = step / max(time.perf_counter() - self.started, 1e-9)
        numbers = "  ".join(f"{key} {value:.4g}" for key, value in values.items())
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {step}/{self.total}  {numbers}  {rate:.1f} it/s\033[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
