"""Singular values estimated by rl.svd for several n_iter, next to the exact ones.

Regenerate the figure shown in the user guide (docs/user_guide/lowrank.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/svd_spectrum.py

It writes docs/_static/svd_spectrum.png (committed, so the docs build does not
recompute it) and prints the errors it plots. It takes under a minute on two
cores, most of it building the matrix and its exact SVD with numpy.

The matrix: A = U diag(s) V^T + E of shape 3000 x 2000 with s_i = 1/i (a slowly
decaying spectrum: s_51 / s_50 = 0.98, the hard case for a randomized SVD)
and E Gaussian noise of spectral norm about 2e-3. The exact singular values
come from numpy.linalg.svd. rl.svd(A, 50, n_iter=q, rng=0) estimates the top
50 with the default oversamples=10, for q = 0, 1, 2, 4:

* left: method="block_krylov" (q Krylov steps, a basis of 60 (q + 1)
  columns; what the default method="auto" picks for this matrix, whose basis
  stays within min(A.shape) / 4 = 500 columns);
* right: method="power" (q power iterations, a basis of 60 columns; 2 q + 2
  passes over A).

Top: the singular values (log scale). Bottom: the relative error
|s_i - estimate_i| / s_i of each estimate (the estimates are never larger than
the exact values, up to rounding), at least 1e-16 so that exact ones show.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

M, N = 3000, 2000
K = 50
NOISE = 1e-3  # E = NOISE * Gaussian / sqrt(M): ||E||_2 about NOISE * (1 + sqrt(N / M))
N_ITERS = [0, 1, 2, 4]
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "svd_spectrum.png"


def matrix() -> np.ndarray:
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((M, N)))
    V, _ = np.linalg.qr(rng.standard_normal((N, N)))
    s = 1.0 / np.arange(1, N + 1)
    return (U * s) @ V.T + NOISE * rng.standard_normal((M, N)) / np.sqrt(M)


def main() -> None:
    start = time.perf_counter()
    A = matrix()
    exact = np.linalg.svd(A, compute_uv=False)[:K]
    print(f"A: {M} x {N}; exact s_1 = {exact[0]:.4f}, s_{K} = {exact[-1]:.4f}")

    fig = Figure(figsize=(10.5, 6.4), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, height_ratios=[3, 2])
    index = np.arange(1, K + 1)
    colors = ["tab:red", "tab:orange", "tab:blue", "tab:green"]
    for column, method in enumerate(["block_krylov", "power"]):
        top, bottom = axes[0, column], axes[1, column]
        top.plot(index, exact, color="black", lw=4.0, alpha=0.3, label="exact (numpy.linalg.svd)")
        for q, color in zip(N_ITERS, colors):
            t0 = time.perf_counter()
            _, s, _ = rl.svd(A, K, n_iter=q, method=method, rng=0)
            seconds = time.perf_counter() - t0
            error = np.abs(exact - s) / exact
            print(
                f"{method:>12}, n_iter={q}: max relative error {error.max():.1e} "
                f"(s_1: {error[0]:.1e}), {seconds:.2f} s"
            )
            top.plot(index, s, color=color, lw=1.4, marker=".", ms=4, label=f"n_iter = {q}")
            bottom.plot(index, np.maximum(error, 1e-16), color=color, lw=1.4, marker=".", ms=4)
        name = 'what "auto" picks here' if method == "block_krylov" else "power iterations"
        top.set_title(f'method="{method}" ({name})')
        top.set_yscale("log")
        bottom.set_yscale("log")
        bottom.set_ylim(1e-16, 1.0)
        bottom.set_xlabel("index i")
        for ax in (top, bottom):
            ax.grid(True, which="major", alpha=0.3)
        top.legend(fontsize=9, loc="upper right")
    fig.suptitle(
        rf"rl.svd(A, {K}, n_iter=q): $A$ of shape {M} $\times$ {N}, "
        r"$\sigma_i \approx 1/i$ plus noise"
    )
    axes[0, 0].set_ylabel(r"singular value $\sigma_i$")
    axes[1, 0].set_ylabel(r"relative error $|\sigma_i - \tilde\sigma_i| \,/\, \sigma_i$")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
