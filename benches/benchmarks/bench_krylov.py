"""asv benchmarks of the Krylov solvers: workloads W17b, W19 and W20 (shared/BENCHMARKS.md).

``benches/compare.py --quick`` sizes, so that a run over the project's
history stays short on a 2-core machine. Each class times randla next to
scipy. Run from ``benches/`` (see ``bench_lowrank.py``).
"""

from __future__ import annotations

import numpy as np
import randla as rl
import scipy.sparse as sp
import scipy.sparse.linalg as spla

SEED = 20240601


def _poisson2d(k: int) -> sp.csr_matrix:
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    eye = sp.identity(k)
    return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()


class W17bCG:
    """CG on a cache-resident 2-D Poisson problem (200 x 200 grid), rtol 1e-8."""

    timeout = 300

    def setup(self):
        self.A = _poisson2d(200)
        self.b = np.random.default_rng(SEED).standard_normal(self.A.shape[0])

    def time_randla(self):
        rl.krylov.cg(self.A, self.b, rtol=1e-8)

    def time_anchor_scipy(self):
        spla.cg(self.A, self.b, rtol=1e-8, atol=0.0, maxiter=10 * self.A.shape[0])

    def track_randla_iterations(self):
        return int(rl.krylov.cg(self.A, self.b, rtol=1e-8).iterations)

    track_randla_iterations.unit = "iterations"


class W19LeastSquares:
    """LSQR and LSMR on a sparse 50000 x 5000 problem with 250000 random nonzeros."""

    timeout = 300

    def setup(self):
        m, n, nnz = 50_000, 5_000, 250_000
        rng = np.random.default_rng(SEED)
        A = sp.csr_matrix(
            (rng.standard_normal(nnz), (rng.integers(0, m, nnz), rng.integers(0, n, nnz))),
            shape=(m, n),
        )
        self.A = (A + sp.eye(m, n)).tocsr()
        self.b = rng.standard_normal(m)

    def time_randla_lsqr(self):
        rl.krylov.lsqr(self.A, self.b, atol=1e-8, btol=1e-8)

    def time_randla_lsmr(self):
        rl.krylov.lsmr(self.A, self.b, atol=1e-8, btol=1e-8)

    def time_anchor_scipy_lsqr(self):
        spla.lsqr(self.A, self.b, atol=1e-8, btol=1e-8)

    def time_anchor_scipy_lsmr(self):
        spla.lsmr(self.A, self.b, atol=1e-8, btol=1e-8)


class W20BlockCG:
    """CG with 8 right-hand sides on Poisson 100 x 100; anchor 8 calls of scipy's cg."""

    timeout = 300

    def setup(self):
        self.A = _poisson2d(100)
        self.B = np.random.default_rng(SEED).standard_normal((self.A.shape[0], 8))

    def time_randla(self):
        rl.krylov.cg(self.A, self.B, rtol=1e-8)

    def time_anchor_scipy(self):
        for c in range(self.B.shape[1]):
            spla.cg(self.A, self.B[:, c], rtol=1e-8, atol=0.0, maxiter=10 * self.A.shape[0])
