"""The one percentile every report and benchmark quotes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): an observed value, never an interpolation,
    so a p95 of 20 latencies is one of them. None for no values."""
    if not len(values):
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q * 100, method="inverted_cdf"))
