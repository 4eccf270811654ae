"""asv benchmarks of the sketching workloads W1-W4 (shared/BENCHMARKS.md).

The same workloads as ``benches/compare.py`` at smaller sizes, so that a run
over the project's history stays short on a 2-core machine. Each class times
randla next to its anchor (and the physical floor where there is one), so the
ratio can be read off any commit's results.

Run from ``benches/``::

    asv run                        # builds each commit with maturin (pip wheel)
    asv run --python=same --quick  # the installed randla, no build
    asv check --python=same        # imports the suite and validates it
"""

from __future__ import annotations

import numpy as np
import randla as rl
import scipy.linalg
import scipy.sparse as sp

SEED = 20240601

# W1-W3: A is N x D float64 C-order, sketches have K rows (compare.py --quick sizes).
N, D, K = 50_000, 100, 400
# W4: CSR M x NS with NNZ nonzeros (NNZ // M in every row), sketch size KS.
M, NS, NNZ, KS = 200_000, 500, 2_000_000, 2000


def _dense() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((N, D))


def _csr() -> sp.csr_matrix:
    per_row = NNZ // M
    rng = np.random.default_rng(SEED + 4)
    cols = np.sort(rng.integers(0, NS - per_row + 1, size=(M, per_row)), axis=1)
    cols += np.arange(per_row)
    indptr = np.arange(0, M * per_row + 1, per_row, dtype=np.int32)
    data = rng.standard_normal(M * per_row)
    return sp.csr_matrix((data, cols.astype(np.int32).ravel(), indptr), shape=(M, NS))


def _cwt(A, k: int, seed: int):
    try:
        return scipy.linalg.clarkson_woodruff_transform(A, k, rng=seed)
    except TypeError:  # scipy < 1.15
        return scipy.linalg.clarkson_woodruff_transform(A, k, seed=seed)


class W1Gaussian:
    """Gaussian sketch of a dense tall matrix; anchor numpy, floor the GEMM alone."""

    timeout = 300
    number = 1
    repeat = (1, 5, 30.0)

    def setup(self):
        self.A = _dense()
        self.rng = np.random.default_rng(SEED + 1)

    def time_randla(self):
        rl.sketch.gaussian(K, N, rng=SEED) @ self.A

    def time_anchor_numpy(self):
        self.rng.standard_normal((K, N)) @ self.A

    def peakmem_randla(self):
        # The process peak includes A (N*D*8 bytes, 38 MiB) but no premade S: a
        # (K, N) matrix held by randla would add K*N*8 bytes (153 MiB).
        rl.sketch.gaussian(K, N, rng=SEED) @ self.A

    def peakmem_anchor_numpy(self):
        self.rng.standard_normal((K, N)) @ self.A


class W1GemmFloor:
    """W1's floor: the GEMM alone with a premade Gaussian S."""

    timeout = 300
    number = 1
    repeat = (1, 5, 30.0)

    def setup(self):
        self.A = _dense()
        self.S0 = np.random.default_rng(SEED + 2).standard_normal((K, N))

    def time_floor_gemm(self):
        self.S0 @ self.A


class W2SRHT:
    """SRHT sketch of the same matrix; anchor W1's (numpy Gaussian)."""

    timeout = 300

    def setup(self):
        self.A = _dense()

    def time_randla(self):
        rl.sketch.srht(K, N, rng=SEED) @ self.A


class W3SparseOfDense:
    """CountSketch and sparse_sign(8) of the same matrix; anchor scipy's CountSketch."""

    timeout = 300

    def setup(self):
        self.A = _dense()

    def time_randla_countsketch(self):
        rl.sketch.countsketch(K, N, rng=SEED) @ self.A

    def time_randla_sparse_sign(self):
        rl.sketch.sparse_sign(K, N, nnz_per_col=8, rng=SEED) @ self.A

    def time_anchor_scipy_cwt(self):
        _cwt(self.A, K, SEED + 3)

    def time_floor_read_pass(self):
        self.A.sum(axis=0)


class W4CountSketchCSR:
    """CountSketch of a scipy CSR matrix; anchor scipy's CountSketch."""

    timeout = 300

    def setup(self):
        self.X = _csr()

    def time_randla(self):
        rl.sketch.countsketch(KS, M, rng=SEED) @ self.X

    def time_anchor_scipy_cwt(self):
        _cwt(self.X, KS, SEED + 3)
