"""asv benchmarks of leverage scores and Lewis weights: workloads W7 and W8 (shared/BENCHMARKS.md).

The same problems as ``benches/compare.py --quick``, so that a run over the
project's history stays short on a 2-core machine. Each class times randla
next to its numpy anchor. Run from ``benches/`` (see ``bench_lowrank.py``).
"""

from __future__ import annotations

import numpy as np
import randla as rl

SEED = 20240601

# W7: A is N7 x D7 float64 with a few heavy rows; W8: N8 x D8, p = 1.
N7, D7 = 50_000, 100
N8, D8 = 20_000, 20


def _heavy_rows(n: int, d: int, seed: int) -> np.ndarray:
    A = np.random.default_rng(seed).standard_normal((n, d))
    A[:20] *= 100.0
    return A


def _numpy_lewis(A: np.ndarray, p: float, iterations: int) -> np.ndarray:
    """Cohen-Peng fixed point with exact leverage scores from numpy QR (W8's anchor)."""
    w = np.ones(A.shape[0])
    for _ in range(iterations):
        B = A * (w ** (0.5 - 1.0 / p))[:, None]
        tau = (np.linalg.qr(B)[0] ** 2).sum(axis=1)
        w = (w ** (2.0 / p - 1.0) * tau) ** (p / 2.0)
    return w


class W7Leverage:
    """Exact and approximate (eps = 0.5) leverage scores; anchor numpy QR."""

    timeout = 300

    def setup(self):
        self.A = _heavy_rows(N7, D7, SEED + 7)

    def time_randla_exact(self):
        rl.leverage_scores(self.A)

    def time_randla_approx(self):
        rl.leverage_scores(self.A, method="approx", eps=0.5, rng=SEED)

    def time_anchor_numpy(self):
        (np.linalg.qr(self.A)[0] ** 2).sum(axis=1)

    def track_randla_approx_max_rel_err(self):
        ref = (np.linalg.qr(self.A)[0] ** 2).sum(axis=1)
        tau = rl.leverage_scores(self.A, method="approx", eps=0.5, rng=SEED)
        return float(np.max(np.abs(tau / ref - 1)))

    track_randla_approx_max_rel_err.unit = "max relative error"


class W8Lewis:
    """l1 Lewis weights (exact leverage inside); anchor 30 numpy Cohen-Peng iterations."""

    timeout = 300

    def setup(self):
        self.A = _heavy_rows(N8, D8, SEED + 8)

    def time_randla_exact(self):
        rl.lewis_weights(self.A, 1.0, method="exact")

    def time_anchor_numpy(self):
        _numpy_lewis(self.A, 1.0, 30)

    def track_randla_max_rel_diff(self):
        ref = _numpy_lewis(self.A, 1.0, 30)
        w = rl.lewis_weights(self.A, 1.0, method="exact")
        return float(np.max(np.abs(w / ref - 1)))

    track_randla_max_rel_diff.unit = "max relative difference"
