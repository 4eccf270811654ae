"""asv benchmarks of DPPs, completion and structured products: W9-W16 (shared/BENCHMARKS.md).

The same problems as ``benches/compare.py --quick``, so that a run over the
project's history stays short on a 2-core machine. Anchors that need an
optional package (DPPy, fancyimpute) live in ``benches/compare.py`` only;
here each class times randla next to a numpy/scipy way where one exists.
"""

from __future__ import annotations

import numpy as np
import randla as rl
import scipy.sparse as sp
from scipy.linalg import lapack

SEED = 20240601


class W9ProjectionDPP:
    """Projection DPP, N = 2000, r = 50: one sample, and 100 samples per call."""

    def setup(self):
        rng = np.random.default_rng(SEED + 9)
        self.V = np.linalg.qr(rng.standard_normal((2000, 50)))[0]

    def time_randla_one(self):
        rl.dpp.sample_projection(self.V, rng=SEED)

    def time_randla_100(self):
        rl.dpp.sample_projection(self.V, n_samples=100, rng=SEED)


class W10KDPP:
    """k-DPP (k = 20) from features 2000 x 100, end to end."""

    def setup(self):
        self.Phi = np.random.default_rng(SEED + 10).standard_normal((2000, 100))

    def time_randla(self):
        rl.dpp.sample(features=self.Phi, k=20, rng=SEED)


class W11Completion:
    """Completion of a 1500 x 1000 rank-10 matrix from 8% of its entries."""

    timeout = 300

    def setup(self):
        rng = np.random.default_rng(SEED + 11)
        m, n, k = 1500, 1000, 10
        U, V = rng.standard_normal((m, k)), rng.standard_normal((n, k))
        flat = rng.choice(m * n, int(0.08 * m * n), replace=False)
        r, c = np.divmod(flat, n)
        self.X = sp.coo_matrix((np.einsum("ij,ij->i", U[r], V[c]), (r, c)), shape=(m, n))
        self.M = U @ V.T

    def time_randla_sketch(self):
        rl.complete(self.X, 10, solver="sketch", rng=SEED)

    def time_randla_exact(self):
        rl.complete(self.X, 10, solver="exact", rng=SEED)

    def track_randla_error(self):
        res = rl.complete(self.X, 10, rng=SEED)
        return float(np.linalg.norm(res.to_dense() - self.M) / np.linalg.norm(self.M))

    track_randla_error.unit = "relative error"


class W13Monarch:
    """Monarch multiply, n = 1024 (32 blocks of 32), 1024 rows; anchor numpy batched matmul."""

    def setup(self):
        rng = np.random.default_rng(SEED + 13)
        self.w1, self.w2 = rng.standard_normal((2, 32, 32, 32))
        self.x = rng.standard_normal((1024, 1024))
        self.M = rl.monarch.Monarch(self.w1, self.w2)

    def time_randla(self):
        rl.monarch.multiply(self.x, self.w1, self.w2)

    def time_randla_transpose(self):
        # x M: the rows of x times the transpose's factors (same flops).
        self.x @ self.M

    def time_anchor_numpy(self):
        b = 32
        out1 = np.matmul(self.x.reshape(-1, b, b).transpose(1, 0, 2), self.w1.transpose(0, 2, 1))
        out1 = out1.transpose(1, 0, 2).reshape(-1, b, b).transpose(2, 0, 1)
        np.matmul(out1, self.w2.transpose(0, 2, 1))


class W14MonarchProject:
    """Monarch projection of a dense 1024 x 1024 (32 blocks); anchor numpy batched SVD."""

    def setup(self):
        self.M = np.random.default_rng(SEED + 14).standard_normal((1024, 1024))

    def time_randla(self):
        rl.monarch.project(self.M, nblocks=32)

    def time_anchor_numpy(self):
        blocks = self.M.reshape(32, 32, 32, 32).transpose(1, 2, 0, 3)
        np.linalg.svd(blocks, full_matrices=False)


class W15Householder:
    """Q C for 128 LAPACK reflectors of length 2048, C 2048 x 1024; anchor dormqr."""

    def setup(self):
        rng = np.random.default_rng(SEED + 15)
        self.qr, self.tau, _, _ = lapack.dgeqrf(rng.standard_normal((2048, 128)))
        self.C = rng.standard_normal((2048, 1024))

    def time_randla(self):
        rl.householder.apply(*rl.householder.from_lapack(self.qr, self.tau), self.C)

    def time_anchor_dormqr(self):
        lapack.dormqr("L", "N", self.qr, self.tau, self.C, 1024 * 64)


class W16DeltaRule:
    """DeltaProduct (n_h = 2), B = 2, T = 512, H = 4, K = V = 64."""

    def setup(self):
        rng = np.random.default_rng(SEED + 16)
        B, T, H, K = 2, 512, 4, 64
        self.q = rng.standard_normal((B, T, H, K))
        k = rng.standard_normal((B, 2 * T, H, K))
        self.k = k / np.linalg.norm(k, axis=-1, keepdims=True)
        self.v = rng.standard_normal((B, 2 * T, H, K))
        self.beta = rng.uniform(0, 2, (B, 2 * T, H))

    def time_randla(self):
        rl.householder.delta_rule(self.q, self.k, self.v, self.beta, n_h=2)
