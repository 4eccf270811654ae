"""asv benchmarks of least squares and low rank: workloads W5 and W6 (shared/BENCHMARKS.md).

The same problems as ``benches/compare.py`` at smaller sizes, so that a run
over the project's history stays short on a 2-core machine. Each class times
randla next to its anchor, so the ratio can be read off any commit's results.

Run from ``benches/``::

    asv run                        # builds each commit with maturin (pip wheel)
    asv run --python=same --quick  # the installed randla, no build
    asv check --python=same        # imports the suite and validates it
"""

from __future__ import annotations

import numpy as np
import randla as rl
import scipy.linalg

SEED = 20240601

# W5: A is N x D float64 C-order with condition number 1e6 (compare.py --quick sizes).
N, D = 50_000, 100
# W6: A is M x NS, a rank-R product plus noise; the SVD keeps K triplets.
M, NS, R, K = 3000, 2000, 100, 50


def _w5_problem() -> tuple[np.ndarray, np.ndarray]:
    """A = Q diag(logspace(0, -6)) V^T (cond 1e6), b = A x + 1e-6 noise."""
    rng = np.random.default_rng(SEED + 5)
    Q, _ = np.linalg.qr(rng.standard_normal((N, D)))
    V, _ = np.linalg.qr(rng.standard_normal((D, D)))
    A = (Q * np.logspace(0, -6, D)) @ V.T
    b = A @ rng.standard_normal(D) + 1e-6 * rng.standard_normal(N)
    return np.ascontiguousarray(A), b


def _w6_matrix() -> np.ndarray:
    rng = np.random.default_rng(SEED + 6)
    A = rng.standard_normal((M, R)) @ rng.standard_normal((R, NS)) / np.sqrt(R)
    A += 0.1 * rng.standard_normal((M, NS))
    return A


class W5Lstsq:
    """lstsq on a tall ill-conditioned dense problem; anchors numpy (gelsd) and gelsy."""

    timeout = 300

    def setup(self):
        self.A, self.b = _w5_problem()

    def time_randla_sketch_precondition(self):
        rl.lstsq(self.A, self.b, method="sketch_precondition", rng=SEED)

    def time_randla_direct(self):
        rl.lstsq(self.A, self.b, method="direct")

    def time_anchor_numpy(self):
        np.linalg.lstsq(self.A, self.b, rcond=None)

    def time_anchor_scipy_gelsy(self):
        scipy.linalg.lstsq(self.A, self.b, lapack_driver="gelsy")

    def track_randla_iterations(self):
        return rl.lstsq(self.A, self.b, method="sketch_precondition", rng=SEED).iterations

    track_randla_iterations.unit = "iterations"


class W6SVD:
    """Randomized SVD (k = K) of a noisy low-rank matrix; anchor sklearn's randomized_svd."""

    timeout = 300

    def setup(self):
        self.A = _w6_matrix()

    def time_randla(self):
        rl.svd(self.A, K, rng=SEED)

    def time_randla_power(self):
        rl.svd(self.A, K, method="power", rng=SEED)

    def track_randla_residual(self):
        U, s, Vt = rl.svd(self.A, K, rng=SEED)
        return float(np.linalg.norm(self.A - (U * s) @ Vt))

    track_randla_residual.unit = "||A - U S Vt||_F"


class W6SVDAnchor:
    """W6's anchor: sklearn's randomized_svd with its defaults (skipped without sklearn)."""

    timeout = 300

    def setup(self):
        try:
            from sklearn.utils.extmath import randomized_svd
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed") from None
        self.randomized_svd = randomized_svd
        self.A = _w6_matrix()

    def time_anchor_sklearn(self):
        self.randomized_svd(self.A, K, random_state=SEED)

    def track_anchor_residual(self):
        U, s, Vt = self.randomized_svd(self.A, K, random_state=SEED)
        return float(np.linalg.norm(self.A - (U * s) @ Vt))

    track_anchor_residual.unit = "||A - U S Vt||_F"
